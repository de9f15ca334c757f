"""The two pieces of AWS plumbing every function needs: a client, and patience.

- :func:`client` gives one boto3 client per service, created on the first call in a
  Lambda container and reused while it stays warm.  It is the only state a function keeps
  between invocations (``functools.cache`` is the one client cache).  No endpoint appears
  here: locally the runtime sets ``AWS_ENDPOINT_URL``, which boto3 honours.
- :func:`retries` is the one backoff: attempt numbers, with a sleep before each retry
  (0.05 s, 0.1 s, 0.2 s, ... optionally capped).

Only the standard library and boto3 (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import functools
import time
from typing import Callable, Iterator

import boto3
from botocore.config import Config

FIRST_DELAY = 0.05  # seconds before the first retry, doubled each time

_sleep: Callable[[float], None] = time.sleep  # replaced by the tests


@functools.cache
def client(service: str, read_timeout: int = 30, connect_timeout: int = 5, max_attempts: int = 3):
    """The boto3 client of ``service``, created once per container and then reused.
    ``max_attempts``: tries of one call by boto3 itself (its "standard" retries).

    ``parameter_validation=False``: boto3 checks every value of a request against the API's
    model before sending it, and the service checks the request again when it arrives. The
    functions build their requests in code (and the tests check them); on the write path,
    with thousands of values per call, boto3's check costs more than the rest of the call
    (a BatchWriteItem of 25 invoice items: ~5 ms). botocore's documentation: "You can
    disable parameter validation for performance reasons."  A malformed request is still
    refused, by the service, with its error code (``ValidationException``, ...).
    """
    return boto3.client(service, config=Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                                               retries={"mode": "standard", "max_attempts": max_attempts},
                                               parameter_validation=False))


def retries(attempts: int | None, first_delay: float = FIRST_DELAY,
            max_delay: float | None = None) -> Iterator[int]:
    """Attempt numbers 0, 1, 2, ... (at most ``attempts``; None: until the caller stops),
    sleeping before each retry: ``first_delay``, then twice as long each time (at most
    ``max_delay``)."""
    attempt, delay = 0, first_delay
    while attempts is None or attempt < attempts:
        if attempt:
            _sleep(delay)
            delay = delay * 2 if max_delay is None else min(delay * 2, max_delay)
        yield attempt
        attempt += 1
