"""The one place that builds boto3 clients.

``client("kinesis")`` returns a client for the current target (see ``ecomlib.config``):
the embedded AWS (started on demand), an endpoint you run yourself, or a real account.
Nothing else in ecomlib builds clients, so switching target is one setting.
"""

from __future__ import annotations

import threading

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from ecomlib import preflight
from ecomlib.config import settings

# Credentials for the `endpoint` target (an AWS-compatible server you run yourself). They
# are not real, so nothing sent with them can reach a real account by accident. The
# embedded AWS makes credentials of its own when it starts (``local_credentials()``):
# they are not AWS keys either, and no one else on the machine can read them.
FAKE_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}

_clients: dict[tuple, BaseClient] = {}
_lock = threading.Lock()


def endpoint_url() -> str | None:
    """The URL clients talk to: the embedded AWS's, the configured endpoint, or None (real AWS)."""
    s = settings()
    if s.target == "local":
        from ecomlib.local import server

        return server.ensure_running()
    return s.endpoint_url


def local_credentials() -> dict[str, str]:
    """The embedded AWS's own credentials (``aws_access_key_id``, ``aws_secret_access_key``),
    starting it first if needed."""
    from ecomlib.local import server

    server.ensure_running()
    return server.credentials()


def session() -> boto3.Session:
    """A boto3 session for the current target: the embedded AWS's own credentials, fake
    ones for an ``endpoint``, your own profile on ``aws``."""
    s = settings()
    if s.target == "aws":
        return boto3.Session(region_name=s.region)
    if s.target == "local":
        return boto3.Session(region_name=s.region, **local_credentials())
    return boto3.Session(region_name=s.region, **FAKE_CREDENTIALS)


def client(service: str) -> BaseClient:
    """A boto3 client for ``service`` on the current target, reused across calls.

    On a real account (``ECOM_TARGET=aws``) the first client waits for the preflight
    (``ecomlib.preflight``): nothing is created until the account is confirmed.
    """
    s = settings()
    if s.target == "aws" and service != "sts":  # STS only tells who we are: the preflight uses it
        preflight.ensure_confirmed(identity)
    url = endpoint_url()
    key = (service, s.target, url, s.region)
    if s.target == "local":  # a restarted embedded AWS has new credentials
        from ecomlib.local import server

        key += (server.credentials()["aws_access_key_id"],)
    with _lock:
        if key not in _clients:
            # Lambda invocations may run for minutes; everything else answers quickly.
            read_timeout = 900 if service == "lambda" else 120
            config = Config(
                retries={"mode": "standard", "max_attempts": 5},
                read_timeout=read_timeout,
                connect_timeout=10,
                max_pool_connections=32,
            )
            _clients[key] = session().client(service, endpoint_url=url, config=config)
        return _clients[key]


def identity() -> tuple[str, str]:
    """(account id, region) of the credentials in use, asked of STS (what the preflight shows)."""
    from botocore.exceptions import NoCredentialsError, NoRegionError

    try:
        sts = client("sts")
        return sts.get_caller_identity()["Account"], sts.meta.region_name
    except NoCredentialsError:
        raise preflight.NotConfirmed(
            "ECOM_TARGET=aws but no AWS credentials were found: run `aws configure` "
            "(or `aws sso login`), or set AWS_PROFILE to a configured profile") from None
    except NoRegionError:
        raise preflight.NotConfirmed("ECOM_TARGET=aws but no region is set: set ECOM_REGION (or AWS_REGION)") from None


def region() -> str:
    """The region in use."""
    return client("sts").meta.region_name


def account_id() -> str:
    """The account the current target acts in (a fixed fake id on the embedded AWS)."""
    return client("sts").get_caller_identity()["Account"]
