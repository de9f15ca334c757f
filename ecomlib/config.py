"""Settings: which AWS the course talks to, and what it names things.

Everything is read from environment variables, so the same notebooks run unchanged
against any target:

=====================  ==========================================================
``ECOM_TARGET``        ``local`` (default): the embedded AWS on 127.0.0.1, started on
                       demand. ``endpoint``: any AWS-compatible URL you run yourself
                       (a moto server, LocalStack) given by ``ECOM_ENDPOINT_URL``.
                       ``aws``: a real account, with credentials, region and profile
                       from the standard AWS configuration (``AWS_PROFILE``, ...).
``ECOM_ENDPOINT_URL``  the URL for the ``endpoint`` target.
``ECOM_REGION``        region; default ``us-east-1`` locally, else the AWS default.
``ECOM_PREFIX``        prefix of every resource name the course creates (``ecom``).
``ECOM_HOME``          where the embedded AWS keeps its state file and log
                       (default ``~/.cache/ecomlib``).
``ECOM_LOCAL_PORT``    port of the embedded AWS (default: a free port).
``ECOM_DATASET``       path of the real Online Retail CSV (see ``ecomlib.data``).
``ECOM_AWS_CONFIRM``   with ``ECOM_TARGET=aws``: the id of the account you accept to
                       create resources (and costs) in; see ``ecomlib.preflight``.
=====================  ==========================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TARGETS = ("local", "endpoint", "aws")
LOCAL_REGION = "us-east-1"


class ConfigError(ValueError):
    """A setting is missing or has a value the course cannot use."""


@dataclass(frozen=True)
class Settings:
    """The settings in force, read from the environment by :func:`settings`."""

    target: str
    endpoint_url: str | None
    region: str | None
    prefix: str
    home: Path
    local_port: int

    @property
    def is_local(self) -> bool:
        """True when the course runs on the embedded AWS."""
        return self.target == "local"


def settings() -> Settings:
    """Read the settings from the environment (cheap: call it whenever you need them)."""
    env = os.environ
    target = env.get("ECOM_TARGET", "local").strip().lower() or "local"
    if target not in TARGETS:
        raise ConfigError(f"ECOM_TARGET={target!r}: choose one of {', '.join(TARGETS)}")
    endpoint_url = env.get("ECOM_ENDPOINT_URL") or None
    if target == "endpoint" and not endpoint_url:
        raise ConfigError("ECOM_TARGET=endpoint needs ECOM_ENDPOINT_URL, e.g. http://127.0.0.1:5000")
    region = env.get("ECOM_REGION") or (LOCAL_REGION if target != "aws" else None)
    prefix = env.get("ECOM_PREFIX", "ecom").strip().lower()
    if not prefix.replace("-", "").isalnum() or len(prefix) > 20:
        raise ConfigError(f"ECOM_PREFIX={prefix!r}: use up to 20 letters, digits or dashes")
    home = Path(env.get("ECOM_HOME") or Path.home() / ".cache" / "ecomlib").expanduser()
    try:
        port = int(env.get("ECOM_LOCAL_PORT") or 0)
    except ValueError:
        raise ConfigError("ECOM_LOCAL_PORT must be a port number") from None
    return Settings(target, endpoint_url, region, prefix, home, port)


def resource_name(*parts: str) -> str:
    """A resource name carrying the course prefix: ``resource_name("orders")`` -> ``ecom-orders``."""
    return "-".join([settings().prefix, *parts])
