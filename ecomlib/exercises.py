"""Exercise checkers that answer in one friendly line.

A notebook's checker is an ordinary function that asserts what a right answer must be,
with a message saying what is still missing, and prints a line starting with "✓" when
the answer is right. Decorated with :func:`checker`, a failed assertion (or an error
that an unanswered exercise causes: a name not defined yet, an AWS error, a ``None``
where a value belongs) prints one line, "Not yet: ...", instead of a traceback::

    @checker
    def check_best_day(answer: str) -> None:
        assert answer == expected, f"{answer} earned less than another day"
        print(f"✓ {answer}")

``with check():`` does the same around any code (for a cell that reads names the
learner has still to define).

In the answer key the "✓" line is a committed output, so nbval fails when a solution
stops passing; in the student edition each unanswered exercise prints its "Not yet" line
and Run All goes on to the end (tests/course/test_editions.py runs both).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable[..., object])

NOT_YET = "Not yet: "


def not_yet_message(error: BaseException) -> str:
    """One line saying what is missing, from the error an unfinished answer raised."""
    from botocore.exceptions import ClientError

    if isinstance(error, AssertionError):
        text = str(error) or "the answer is not right yet"
    elif isinstance(error, NameError):
        text = f"{error}: run your answer cell (and the cells above it) first"
    elif isinstance(error, ClientError):
        details = error.response.get("Error", {})
        text = f"AWS says {details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    else:  # a TypeError from a None left in place, a KeyError from a wrong shape, ...
        text = f"the check stopped at {type(error).__name__}: {error}"
    text = " ".join(text.split())  # one line, however the message was written
    if text.startswith(NOT_YET):
        text = text[len(NOT_YET):]
    return NOT_YET + text


@contextlib.contextmanager
def check() -> Iterator[None]:
    """Run the block; if it raises (an unfinished answer), print one "Not yet: ..." line."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - the learner gets one line, never a traceback
        print(not_yet_message(error))


def checker(function: F) -> F:
    """Make ``function`` (which asserts, then prints "✓ ...") answer an unfinished exercise in one line."""

    @functools.wraps(function)
    def run(*args, **kwargs) -> None:
        with check():
            function(*args, **kwargs)

    return run  # type: ignore[return-value]
