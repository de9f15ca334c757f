"""API Gateway (REST, proxy integration) in and out: what both APIs of the course share.

- :class:`ApiError` is the one error type: a request answered with ``status`` and
  ``{"message": ...}`` (plus headers, e.g. ``Allow`` for a 405).
- :func:`body_text` and :func:`parse_json` read a request's body; :func:`method_of` and
  :func:`request_id_of` read the event.
- :func:`response` is a proxy response with a JSON body: Decimals are written as their
  exact digits (:func:`to_json`), never through float.
- :func:`serve` runs a handler's ``handle(event, request_id, log)`` and turns what it
  returns or raises into a response: one JSON log line per request, never a stack trace
  to the client (an unexpected error is 500 ``{"message": "internal error", "requestId"}``).

Only the standard library (what the Lambda Python runtime provides).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from decimal import Decimal
from typing import Any, Callable

from shared.settings import Misconfigured

JSON_HEADERS = {"Content-Type": "application/json"}


class ApiError(Exception):
    """The request cannot be served: answered with ``status`` and ``{"message": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def request_id_of(event: Any, context: Any = None) -> str:
    """API Gateway's request id (requestContext.requestId), else Lambda's, else a new uuid."""
    request = event.get("requestContext") if isinstance(event, dict) else None
    if isinstance(request, dict) and isinstance(request.get("requestId"), str) and request["requestId"]:
        return request["requestId"]
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


def method_of(event: dict) -> str | None:
    """The HTTP method of a REST (v1) proxy event (HTTP API v2 events work too)."""
    method = event.get("httpMethod")
    if method is None:
        http = (event.get("requestContext") or {}).get("http") or {}
        method = http.get("method") if isinstance(http, dict) else None
    return method.upper() if isinstance(method, str) else None


def body_text(event: dict) -> str:
    """The request body as text: base64-decoded when isBase64Encoded, checked to be UTF-8."""
    body = event.get("body")
    if body is None:
        body = ""
    if event.get("isBase64Encoded") and body:
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ApiError(400, "body is marked base64 but is not valid base64") from None
    if isinstance(body, (bytes, bytearray)):
        try:
            return bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"body is not valid UTF-8 (bad byte at position {exc.start})") from None
    if not isinstance(body, str):
        raise ApiError(400, "body must be text")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "body is not valid UTF-8") from None
    return body.lstrip("\ufeff")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> Any:
    """The JSON value of a body; numbers with a fraction become Decimal (2.55 stays 2.55).
    Raises ApiError(400) saying where the JSON is wrong."""
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # NaN / Infinity, integers with thousands of digits
        raise ApiError(400, f"body is not valid JSON: {str(exc).split(':')[0]}") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None


def to_json(value: Any) -> str:
    """JSON text of dicts, lists, str, bool, None, int and Decimal (15.30 -> 15.3, 1E+2 -> 100)."""
    if isinstance(value, Decimal):
        text = format(value, "f")  # plain digits, exact: no float, no exponent
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, dict):
        pairs = (f"{json.dumps(str(k), ensure_ascii=False)}: {to_json(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def response(status: int, body: dict, headers: dict[str, str] | None = None) -> dict:
    """An API Gateway proxy response with a JSON body."""
    return {"statusCode": status, "headers": {**JSON_HEADERS, **(headers or {})}, "body": to_json(body)}


def serve(event: Any, context: Any, handle: Callable[[dict, str, dict], tuple[int, dict]], logger: Any, *,
          headers: dict[str, str] | None = None, request_id_in_errors: bool = True) -> dict:
    """Answer one proxy event with ``handle(event, request_id, log) -> (status, body)``.

    ``log`` is the request's log line (a dict ``handle`` may add to).  ApiError and
    Misconfigured become ``{"message"}`` answers (with ``requestId`` when
    ``request_id_in_errors``, and always for a 5xx); anything else is logged with its
    stack trace and answered 500 "internal error".
    """
    started = time.monotonic()
    request_id = request_id_of(event, context)
    log: dict[str, Any] = {"requestId": request_id}
    extra: dict[str, str] = {}
    try:
        if not isinstance(event, dict):
            raise ApiError(400, "expected an API Gateway proxy event")
        status, body = handle(event, request_id, log)
    except (ApiError, Misconfigured) as exc:
        status = getattr(exc, "status", 500)
        body = {"message": str(exc)}
        if request_id_in_errors or status >= 500:
            body["requestId"] = request_id
        extra = getattr(exc, "headers", {})
        log.update(status=status, message=str(exc))
    except Exception:  # noqa: BLE001 - the last line of defence: details in the log only
        log.update(status=500, message="internal error")
        logger.exception(json.dumps(log))
        return response(500, {"message": "internal error", "requestId": request_id}, headers)
    log.update(status=status, ms=round((time.monotonic() - started) * 1000, 1))
    logger.info(json.dumps(log))
    return response(status, body, {**(headers or {}), **extra})
