"""ecomlib: the helpers behind the course "E-commerce data engineering on AWS".

Modules are named after what they do:

- ``config``    settings and targets (local, endpoint, aws)
- ``aws``       the one place that builds boto3 clients
- ``data``      load, parse and generate the Online Retail data
- ``local``     the embedded local AWS (moto plus what moto does not emulate)
"""

__version__ = "0.1.0"
