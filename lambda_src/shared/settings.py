"""The one way a function reads its settings: environment variables into a dataclass.

A function declares its settings as a frozen dataclass; each field is read from the
environment variable of the same name in capitals (``stream_name`` <- ``STREAM_NAME``).
A field without a default is required; a blank variable counts as unset; a field typed
``int`` is parsed.  Anything wrong raises :class:`Misconfigured`, naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, TypeVar

T = TypeVar("T")


class Misconfigured(RuntimeError):
    """A setting is missing or wrong: the function cannot do its work."""


def read_settings(cls: type[T], env: Mapping[str, str] | None = None) -> T:
    """An instance of the dataclass ``cls`` read from ``env`` (default: os.environ)."""
    env = os.environ if env is None else env
    values, missing = {}, []
    for field in dataclasses.fields(cls):
        name = field.name.upper()
        raw = (env.get(name) or "").strip()
        if not raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                missing.append(name)
            continue
        if "int" in str(field.type):
            try:
                values[field.name] = int(raw)
            except ValueError:
                raise Misconfigured(f"function misconfigured: {name}={raw!r} must be an integer") from None
        else:
            values[field.name] = raw
    if missing:
        raise Misconfigured(f"function misconfigured: set {', '.join(missing)}")
    return cls(**values)
