"""Security switches that behave the same on every target.

IAM is enforced on the embedded AWS by default, as on AWS: every call made with a role's
credentials (a Lambda function's) is checked against the role's policies, by action,
resource and condition (see ``ecomlib.local.iam_enforcement``). :func:`enforce_iam` can
switch the checks off where a test needs the lenient behaviour, and on again.
"""

from __future__ import annotations

from ecomlib import aws
from ecomlib.config import settings


def enforce_iam(on: bool = True) -> bool:
    """Turn the checking of roles' permissions on (the default) or off; returns whether it is on.

    On AWS permissions are always enforced: this changes nothing and returns True. On an
    ``endpoint`` you run yourself it cannot be switched from here: returns False.
    """
    s = settings()
    if s.target == "aws":
        return True
    if not s.is_local:
        return False
    from ecomlib.local import server

    aws.endpoint_url()  # make sure it runs
    return server.control("iam", {"enforce": on})["iam"]["enforced"]
