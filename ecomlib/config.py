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
``ECOM_PREFIX``        prefix of every resource name the course creates (``ecom``); on a
                       shared account, one per learner (``ecom-alice``). It must give
                       valid names to every kind of resource: see :func:`check_prefix`.
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
import re
from dataclasses import dataclass
from pathlib import Path

from ecomlib import registry

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
    prefix = check_prefix(env.get("ECOM_PREFIX", "ecom").strip().lower())
    home = Path(env.get("ECOM_HOME") or Path.home() / ".cache" / "ecomlib").expanduser()
    try:
        port = int(env.get("ECOM_LOCAL_PORT") or 0)
    except ValueError:
        raise ConfigError("ECOM_LOCAL_PORT must be a port number") from None
    return Settings(target, endpoint_url, region, prefix, home, port)


# ---- the prefix: valid in every name the course gives ---------------------------------------

# An account id is always 12 digits: the longest names are checked with one in place.
SAMPLE_ACCOUNT = "123456789012"

# Each kind's naming rules, as AWS documents them: (kind as in ecomlib.registry, the most
# characters, the characters allowed, more rules as (pattern the name must match, the rule)).
NAME_RULES: dict[str, tuple[int, str, tuple[tuple[str, str], ...]]] = {
    "S3 buckets": (63, r"[a-z0-9.-]", (
        (r"[a-z0-9].*[a-z0-9]\Z", "must begin and end with a letter or digit"),
        (r"(?!xn--|sthree-|amzn-s3-demo-)", "must not begin with xn--, sthree- or amzn-s3-demo-"),
        (r"(?!.*(-s3alias|--ol-s3|--x-s3|--table-s3)\Z)", "must not end with a reserved suffix"))),
    "Redshift cluster": (63, r"[a-z0-9-]", (
        (r"[a-z]", "must begin with a letter"),
        (r"(?!.*--)", "must not have two consecutive hyphens"),
        (r".*[^-]\Z", "must not end with a hyphen"))),
    "Lambda functions": (64, r"[A-Za-z0-9_-]", ()),
    "IAM roles": (64, r"[A-Za-z0-9+=,.@_-]", ()),
    "SQS queues": (80, r"[A-Za-z0-9_-]", ()),
    "Kinesis data stream": (128, r"[A-Za-z0-9_.-]", ()),
    "DynamoDB tables": (255, r"[A-Za-z0-9_.-]", ()),
    "Kinesis Data Firehose": (64, r"[A-Za-z0-9_.-]", ()),
    "EventBridge rule": (64, r"[A-Za-z0-9_.-]", ()),
    "CloudWatch log groups": (512, r"[A-Za-z0-9_./#-]", ()),
    "API Gateway REST API": (1024, r"[ -~]", ()),
    "EC2 security groups": (255, r"[ -~]", ((r"(?!sg-)", "must not begin with sg-"),)),
    "CloudFormation stacks": (128, r"[A-Za-z0-9-]", ((r"[A-Za-z]", "must begin with a letter"),)),
}


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be used (the rule and the name that breaks it), or None.

    Every name of ``ecomlib.registry`` is filled in with it (and a 12-digit account id)
    and checked against its kind's rules (:data:`NAME_RULES`). The prefix may not make a
    name another prefix also makes (``ecom-ingest``'s API ``ecom-ingest-api`` is ``ecom``'s
    ingest function), so that no exact name is ever two learners' at once.
    """
    if not re.fullmatch(r"[a-z0-9-]+", prefix):
        return "use only lowercase letters, digits and dashes"
    by_kind = registry.names(prefix, SAMPLE_ACCOUNT)
    for kind, names in by_kind.items():
        most, allowed, rules = NAME_RULES[kind]
        for name in sorted(names, key=len, reverse=True):
            if len(name) > most:
                return f"{kind} {name!r} is {len(name)} characters: at most {most} are allowed (shorten the prefix)"
            if not re.fullmatch(f"{allowed}+", name):
                return f"{kind} {name!r}: only {allowed} is allowed"
            for pattern, rule in rules:
                if not re.match(pattern, name):
                    return f"{kind} {name!r} breaks the rule: it {rule}"
    ours = {name for names in by_kind.values() for name in names}
    parts = prefix.split("-")
    for cut in range(1, len(parts)):
        shorter = "-".join(parts[:cut])
        if not shorter:
            continue
        theirs = {name for names in registry.names(shorter, SAMPLE_ACCOUNT).values() for name in names}
        clash = sorted(ours & theirs)
        if clash:
            return f"{clash[0]!r} would be a name of prefix {shorter!r} too: choose a prefix that does not end in {'-'.join(parts[cut:])!r}"
    return None


def check_prefix(prefix: str) -> str:
    """``prefix`` if every name it gives is valid, else :class:`ConfigError` saying why."""
    problem = prefix_problem(prefix)
    if problem:
        raise ConfigError(f"ECOM_PREFIX={prefix!r}: {problem}")
    return prefix


def resource_name(*parts: str) -> str:
    """A resource name carrying the course prefix: ``resource_name("orders")`` -> ``ecom-orders``."""
    return "-".join([settings().prefix, *parts])
