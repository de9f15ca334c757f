"""Security switches that behave the same on every target.

:func:`enforce_iam` makes the embedded AWS check each Lambda function's calls against its
own role, as AWS always does (see ``ecomlib.local.iam_enforcement`` for what moto can and
cannot check: outside S3 only the action, not the resource).
"""

from __future__ import annotations

from ecomlib import aws
from ecomlib.config import settings


def enforce_iam(on: bool = True) -> bool:
    """Turn the checking of functions' permissions on (or off); returns whether it is on.

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
