"""ecomlib: the helpers behind the course "E-commerce data engineering on AWS".

Modules are named after what they do, one name each (lower layers first):

- ``portable``    the operating-system calls, for POSIX and Windows alike
- ``config``      settings and targets (local, endpoint, aws), and resource names
- ``schema``      the data's columns and types, ``parse``, reference figures of the real data
- ``synthetic``   the seeded generator of data shaped like the real data
- ``data``        load, read, write and check the Online Retail data
- ``schedule``    EventBridge ``rate(...)``/``cron(...)`` expressions, in UTC
- ``security``    security switches that behave the same on every target
- ``network``     address blocks AWS publishes (Firehose's, per region)
- ``cost``        cost and capacity planner, at AWS's list prices
- ``registry``    every pipeline declared once: functions, mappings, resources, cost, diagram
- ``preflight``   what a real account gets and costs; asks for confirmation first
- ``aws``         the one place that builds boto3 clients (runs the preflight on a real account)
- ``redshift``    SQL on the warehouse through the Redshift Data API
- ``deploy``      the deploy steps: roles, functions, mappings, queues, buckets, tables, APIs
- ``pipelines``   the pipelines, one module each (``pipelines.ingest`` ... ``pipelines.batch``)
- ``reconcile``   account for every row: stored once, dead-lettered, or missing
- ``client``      send rows to the ingestion API
- ``teardown``    delete everything tagged with the course's prefix, then check
- ``infra``       the whole stack as one CloudFormation template
- ``viz``         the architecture diagram and the charts
- ``exercises``   exercise checkers that answer in one line ("Not yet: ..." or "✓ ...")
- ``edition``     the student edition and the answer key from the committed notebooks
- ``doctor``      ``python -m ecomlib doctor``: check this machine, print the fix for each problem
- ``demo``        ``python -m ecomlib demo``: every pipeline on the dataset
- ``bench``       ``python -m ecomlib bench``: timings of each stage
- ``local``       the embedded local AWS (moto plus what moto does not emulate)
"""

__version__ = "0.1.0"
