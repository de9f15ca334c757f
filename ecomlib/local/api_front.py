"""Serve deployed API Gateway REST APIs over HTTP, calling their Lambda functions.

AWS: a deployed stage answers at ``https://<api-id>.execute-api.<region>.amazonaws.com/
<stage>``; with a Lambda proxy (AWS_PROXY) integration, API Gateway turns each request
into a proxy event (version 1.0), invokes the function, and turns the function's
``{"statusCode", "headers", "body"}`` back into the HTTP response.

moto 5.2: stores APIs, resources, methods, integrations and stages, but has no
execute-api endpoint and cannot call AWS_PROXY integrations.

Here: every REST API that has a stage gets its own HTTP server on 127.0.0.1, so a stage's
base URL is ``http://127.0.0.1:<port>/<stage>``. Requests are routed with the resources
and methods stored in moto (its current definitions: on AWS a change is live only after
a new deployment) to the function, with the same event and response shapes as AWS.

And with API Gateway's limits and gateway errors (API Gateway developer guide, "quotas",
"Output format of a Lambda function for proxy integration", "Gateway response types"):
a function still running after the 29 s integration timeout gives 504
``{"message": "Endpoint request timed out"}`` (the invocation goes on); a function error
or a response that is not a proxy response (not a JSON object, no integer
``statusCode``, a ``body`` that is not a string, headers that are not strings, a
response over Lambda's 6 MB) gives 502 ``{"message": "Internal server error"}``; every
gateway error carries ``x-amzn-ErrorType``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib.local.component import Component, Route, Worker
from ecomlib.local.lambda_runtime import CALLER_TIMED_OUT, LambdaRuntime, get_function
from ecomlib.registry import API_GATEWAY_TIMEOUT_S

log = logging.getLogger("ecomlib.api")

HOST = "127.0.0.1"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_EVENT_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
INTEGRATION_TIMEOUT_S = float(API_GATEWAY_TIMEOUT_S)  # REST API integration timeout (29 s)
# x-amzn-ErrorType of API Gateway's own answers.
ERROR_TYPES = {"Forbidden": "ForbiddenException", "Missing Authentication Token": "MissingAuthenticationTokenException",
               "Internal server error": "InternalServerErrorException",
               "Endpoint request timed out": "InternalServerErrorException"}


class ApiFront(Component):
    """One HTTP server per REST API that has a stage, started and stopped as APIs come and go."""

    name = "api-front"

    def __init__(self, runtime: LambdaRuntime) -> None:
        self.runtime = runtime
        self._servers: dict[tuple[str, str], ThreadingHTTPServer] = {}  # (region, api id) -> server
        self._lock = threading.Lock()
        self._watcher = Worker("api-front", 0.5, self._sync)
        self.integration_timeout = INTEGRATION_TIMEOUT_S

    def routes(self) -> dict[str, Route]:
        return {"api-front/integration-timeout": self._set_timeout}

    def _set_timeout(self, body: dict) -> dict:
        """``{"seconds": s}``: a shorter integration timeout (a test's; never above AWS's 29 s),
        ``{}`` restores AWS's."""
        seconds = float(body.get("seconds", INTEGRATION_TIMEOUT_S))
        if not 0 < seconds <= INTEGRATION_TIMEOUT_S:
            raise ValueError(f"integration timeout: more than 0 and at most {INTEGRATION_TIMEOUT_S:g} s (AWS's)")
        self.integration_timeout = seconds
        return {"integration_timeout": seconds}

    def reset(self) -> None:
        self._close_all()
        self.integration_timeout = INTEGRATION_TIMEOUT_S

    def start(self, endpoint: str) -> None:  # noqa: ARG002
        self._watcher.start()

    def stop(self) -> None:
        self._watcher.stop()
        self._close_all()

    def status(self) -> dict:
        """``{"apis": {api name: base URL of its stage}}`` (``name/stage`` when several)."""
        self._sync()
        apis = {}
        for (region, api_id), httpd in list(self._servers.items()):
            api = _backend(region).apis.get(api_id)
            if api is None:
                continue
            stages = sorted(api.stages)
            for stage in stages:
                key = api.name if len(stages) == 1 else f"{api.name}/{stage}"
                apis[key] = f"http://{HOST}:{httpd.server_port}/{stage}"
        return {"apis": apis}

    def _close_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()

    def _sync(self) -> None:
        """Start a server for each API with a stage; stop those whose API is gone."""
        from moto.apigateway.models import apigateway_backends

        wanted = set()
        for region in list(apigateway_backends[DEFAULT_ACCOUNT_ID].keys()):
            for api_id, api in list(_backend(region).apis.items()):
                if api.stages:
                    wanted.add((region, api_id))
        with self._lock:
            for key in wanted - set(self._servers):
                httpd = ThreadingHTTPServer((HOST, 0), _Handler)
                httpd.daemon_threads = True
                httpd.api_key = key  # type: ignore[attr-defined]
                httpd.runtime = self.runtime  # type: ignore[attr-defined]
                httpd.front = self  # type: ignore[attr-defined]
                threading.Thread(target=httpd.serve_forever, name=f"api-{key[1]}", daemon=True).start()
                self._servers[key] = httpd
                log.info("API %s serving on http://%s:%s", key[1], HOST, httpd.server_port)
            gone = [self._servers.pop(key) for key in set(self._servers) - wanted]
        for httpd in gone:
            httpd.shutdown()
            httpd.server_close()


def _backend(region: str):
    from moto.apigateway.models import apigateway_backends

    return apigateway_backends[DEFAULT_ACCOUNT_ID][region]


# ---- routing --------------------------------------------------------------------------


def _match(api, path: str):
    """The resource whose template matches ``path`` and its path parameters.

    Literal segments win over ``{param}``, which wins over greedy ``{proxy+}``, as on AWS.
    """
    segments = [s for s in path.split("/") if s]
    best = None
    for resource in list(api.resources.values()):
        template = [s for s in resource.get_path().split("/") if s]
        params, score = {}, []
        for i, part in enumerate(template):
            if part.endswith("+}"):  # greedy: the rest of the path, at least one segment
                if i >= len(segments):
                    score = None
                else:
                    params[part[1:-2]] = "/".join(unquote(s) for s in segments[i:])
                    score.append(0)
                break
            if i >= len(segments):
                score = None
                break
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = unquote(segments[i])
                score.append(1)
            elif part == segments[i]:
                score.append(2)
            else:
                score = None
                break
        else:
            if len(template) != len(segments):
                score = None
        if score is None:
            continue
        if best is None or score > best[0]:
            best = (score, resource, params)
    return (best[1], best[2]) if best else (None, {})


def proxy_response(payload: bytes) -> tuple[int, dict[str, str], dict[str, list[str]] | None, bytes]:
    """(status, headers, multi-value headers, body) of a Lambda proxy response, or ValueError
    saying why API Gateway would call it malformed: a JSON object with an integer
    ``statusCode``, a string (or null) ``body``, string ``headers`` values, lists of strings
    in ``multiValueHeaders``, a boolean ``isBase64Encoded`` (and then valid base64)."""
    try:
        response = json.loads(payload)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(response, dict):
        raise ValueError(f"a JSON {type(response).__name__}, not an object")
    status = response.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {status!r} is not an HTTP status")
    body = response.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"body is a {type(body).__name__}, not a string")
    encoded = response.get("isBase64Encoded", False)
    if encoded is not None and not isinstance(encoded, bool):
        raise ValueError("isBase64Encoded is not a boolean")
    headers = response.get("headers") or {}
    multi = response.get("multiValueHeaders")
    if not isinstance(headers, dict) or any(isinstance(v, (dict, list)) or v is None for v in headers.values()):
        raise ValueError("headers is not a map of strings")
    if multi is not None and (not isinstance(multi, dict) or any(
            not isinstance(v, list) or any(isinstance(i, (dict, list)) for i in v) for v in multi.values())):
        raise ValueError("multiValueHeaders is not a map of lists of strings")
    text = body or ""
    if encoded:
        try:
            body_bytes = base64.b64decode(text, validate=True)
        except ValueError:
            raise ValueError("body is not base64") from None
    else:
        body_bytes = text.encode("utf-8")
    return status, {str(k): _header_value(v) for k, v in headers.items()}, multi, body_bytes


def _header_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _function_arn(uri: str) -> str | None:
    # arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations
    marker = "/functions/"
    if marker not in uri:
        return None
    return uri.split(marker, 1)[1].rsplit("/invocations", 1)[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ecomlib-api-front"
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms ACK delay)

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (quiet)
        return

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None,
               multi: dict[str, list[str]] | None = None) -> None:
        self.send_response(status)
        sent = set()
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
            sent.add(name.lower())
        for name, values in (multi or {}).items():
            if name.lower() in sent:
                continue
            for value in values:
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _message(self, status: int, message: str, request_id: str) -> None:
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
        if message in ERROR_TYPES:
            headers["x-amzn-ErrorType"] = ERROR_TYPES[message]
        self._reply(status, json.dumps({"message": message}).encode(), headers)

    def _handle(self) -> None:
        request_id = str(uuid.uuid4())
        region, api_id = self.server.api_key  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return self._message(413, "Request Too Long", request_id)
        raw = self.rfile.read(length) if length else b""

        api = _backend(region).apis.get(api_id)
        url = urlsplit(self.path)
        parts = url.path.split("/", 2)
        stage = parts[1] if len(parts) > 1 else ""
        path = "/" + (parts[2] if len(parts) > 2 else "")
        if api is None or stage not in api.stages:
            return self._message(403, "Forbidden", request_id)
        resource, path_params = _match(api, path)
        methods = resource.resource_methods if resource else {}
        method = methods.get(self.command) or methods.get("ANY")
        if method is None:
            return self._message(403, "Missing Authentication Token", request_id)
        integration = method.method_integration
        arn = _function_arn(integration.uri) if integration else None
        if integration is None or integration.integration_type != "AWS_PROXY" or not arn:
            kind = integration.integration_type if integration else "none"
            return self._message(500, f"integration type {kind} is not emulated locally (use AWS_PROXY)", request_id)

        event = self._event(api, stage, path, resource, path_params, url.query, raw, request_id)
        payload = json.dumps(event)
        if len(payload) > MAX_EVENT_BYTES:
            return self._message(413, "Request Too Long", request_id)
        try:
            result = self.server.runtime.invoke(  # type: ignore[attr-defined]
                get_function(arn), payload, wait_limit=self.server.front.integration_timeout)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001  (e.g. the function was deleted)
            log.exception("invoking %s", arn)
            return self._message(502, "Internal server error", request_id)
        if result.error is not None and result.error.get("errorType") == CALLER_TIMED_OUT:
            return self._message(504, "Endpoint request timed out", request_id)
        if not result.ok:
            return self._message(502, "Internal server error", request_id)
        try:
            status, headers, multi, body_bytes = proxy_response(result.payload)
        except ValueError as exc:  # AWS: "Malformed Lambda proxy response", a 502 to the client
            log.warning("malformed Lambda proxy response from %s: %s", arn, exc)
            return self._message(502, "Internal server error", request_id)
        headers.setdefault("Content-Type", "application/json")
        headers["x-amzn-RequestId"] = request_id
        self._reply(status, body_bytes, headers, multi)

    def _event(self, api, stage, path, resource, path_params, query, raw, request_id) -> dict:
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        try:
            body, is_b64 = (raw.decode("utf-8"), False) if raw else (None, False)
        except UnicodeDecodeError:
            body, is_b64 = base64.b64encode(raw).decode(), True
        now = time.time()
        return {
            "resource": resource.get_path(),
            "path": path,
            "httpMethod": self.command,
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": api.stages[stage].variables or None,
            "requestContext": {
                "resourceId": resource.id,
                "resourcePath": resource.get_path(),
                "httpMethod": self.command,
                "extendedRequestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": f"/{stage}{path}",
                "accountId": DEFAULT_ACCOUNT_ID,
                "protocol": self.request_version,
                "stage": stage,
                "domainPrefix": api.id,
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {"sourceIp": self.client_address[0],
                             "userAgent": self.headers.get("User-Agent")},
                "domainName": f"{HOST}:{self.server.server_port}",
                "apiId": api.id,
            },
            "body": body,
            "isBase64Encoded": is_b64,
        }

