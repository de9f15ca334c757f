"""One Lambda execution environment: a process that imports a function's handler and
runs its invocations, one at a time, as the AWS Python runtime does.

Started by ``ecomlib.local.lambda_runtime`` with the function's code directory as the
working directory and its environment variables (and nothing of ecomlib's). It reads
invocations from stdin and writes results to a private copy of stdout; whatever the
handler prints or logs is captured per invocation and sent back as its log lines.
Messages are 4-byte big-endian lengths followed by JSON.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import struct
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any, BinaryIO, Callable

from ecomlib.portable import max_rss_mb


def read_message(stream: BinaryIO) -> dict | None:
    """One length-prefixed JSON message, or None at end of stream."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return json.loads(stream.read(size))


def write_message(stream: BinaryIO, message: dict) -> None:
    """Write one length-prefixed JSON message and flush it."""
    body = json.dumps(message).encode()
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


class LambdaContext:
    """The ``context`` argument of a handler, with the attributes AWS provides."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_arn: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _CurrentStdout(logging.Handler):
    """Logging handler in the AWS runtime's format, writing to the capture in force."""

    request_id = ""

    def emit(self, record: logging.LogRecord) -> None:
        stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        message = self.format(record)
        sys.stdout.write(f"[{record.levelname}]\t{stamp}Z\t{self.request_id}\t{message}\n")


def _error(exc: BaseException, error_type: str | None = None) -> dict:
    # Only the function's own frames, as AWS shows them (not this runtime's).
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _load_handler(spec: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = spec.rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    return getattr(module, function_name)


def main() -> None:
    # Keep the real stdout for results; anything else written to fd 1 goes to stderr.
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests_in = sys.stdin.buffer

    log_handler = _CurrentStdout()
    root = logging.getLogger()
    root.addHandler(log_handler)
    root.setLevel(logging.WARNING)  # as the AWS runtime: handlers set their own level

    handler: Callable | None = None
    init_error: dict | None = None
    while True:
        request = read_message(requests_in)
        if request is None:
            return
        capture = io.StringIO()
        sys.stdout = sys.stderr = capture
        log_handler.request_id = request["request_id"]
        response: dict[str, Any] = {}
        try:
            if handler is None and init_error is None:
                try:
                    handler = _load_handler(os.environ["_HANDLER"])
                except Exception as exc:  # noqa: BLE001  (reported as AWS does)
                    kind = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.HandlerNotFound"
                    init_error = _error(exc, kind)
                    init_error["errorMessage"] = f"Unable to import module '{os.environ['_HANDLER']}': {exc}"
            if init_error is not None:
                response = {"ok": False, "error": init_error}
            else:
                context = LambdaContext(request["request_id"], request["deadline_ms"], request["invoked_arn"])
                try:
                    result = handler(json.loads(request["event"]), context)
                    response = {"ok": True, "payload": json.dumps(result)}
                except Exception as exc:  # noqa: BLE001
                    error = _error(exc)
                    print(f"[ERROR] {error['errorType']}: {error['errorMessage']}\nTraceback (most recent call last):\n"
                          + "".join(error["stackTrace"]))
                    response = {"ok": False, "error": error}
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        response["logs"] = capture.getvalue()
        response["max_rss_mb"] = int(max_rss_mb())
        write_message(results, response)


if __name__ == "__main__":
    main()
