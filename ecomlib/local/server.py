"""Start, find, reset and stop the embedded AWS: one background process on 127.0.0.1.

The process runs moto's server (the AWS APIs) plus ecomlib's gap-fillers. Its address
is written to ``$ECOM_HOME/server.json``, so every notebook kernel and terminal in one
sitting finds and reuses the same process, and what one notebook deploys is there for
the next. ``python -m ecomlib local start|status|stop|reset`` drives it by hand.

Only its user may use it: the state folder is 0700 and its files 0600, the process makes
credentials of its own when it starts (``$ECOM_HOME/credentials.json``, see
``ecomlib.local.auth``), and every request, its own control routes included, must be
signed with them (``python -m ecomlib local credentials`` prints them for other tools).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import requests

from ecomlib import portable
from ecomlib.config import settings
from ecomlib.local import auth
from ecomlib.local.component import MOTO_LOCK, Component

HOST = "127.0.0.1"
CONTROL = "/_ecomlib"  # the process's own routes, beside the AWS APIs


class LocalAWSError(RuntimeError):
    """The embedded AWS could not be started or reached."""


# --------------------------------------------------------------------------------------
# Client side: used by notebooks, tests and the CLI to manage the process.
# --------------------------------------------------------------------------------------


def _state_file() -> Path:
    return settings().home / "server.json"


def _log_file() -> Path:
    return settings().home / "server.log"


def _read_state() -> dict | None:
    try:
        return json.loads(_state_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _alive(pid: int) -> bool:
    return portable.pid_alive(pid)  # (a zombie, exited but not reaped, is not alive)


def _running_state() -> dict | None:
    state = _read_state()
    if state and _alive(state["pid"]):
        return state
    return None


@contextlib.contextmanager
def _start_lock() -> Iterator[None]:
    """One starter at a time, across processes (two kernels opening at once)."""
    home = auth.secure_home(settings().home)
    with os.fdopen(os.open(home / "start.lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
        portable.lock_file(fh)
        try:
            yield
        finally:
            portable.unlock_file(fh)


def ensure_running() -> str:
    """The endpoint URL of the embedded AWS, starting it first if it is not running."""
    state = _running_state()
    if state:
        return state["endpoint"]
    return start()


def start(timeout: float = 60) -> str:
    """Start the embedded AWS in the background (if not running) and return its endpoint."""
    with _start_lock():
        state = _running_state()
        if state:
            return state["endpoint"]
        _state_file().unlink(missing_ok=True)
        s = settings()
        log = os.fdopen(os.open(_log_file(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        cmd = [sys.executable, "-m", "ecomlib.local", "--port", str(s.local_port)]
        # A new session: the server outlives the kernel or command that started it, and
        # holds none of its pipes (output goes to the log file).
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            close_fds=True, **portable.detached(), env=os.environ.copy(),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = _tail(_log_file())
                if "Address already in use" in tail:
                    raise LocalAWSError(
                        f"port {s.local_port} on {HOST} is already in use (another program, or an "
                        "embedded AWS started with another ECOM_HOME): set ECOM_LOCAL_PORT to a free "
                        "port, or unset it to let the embedded AWS pick one")
                raise LocalAWSError(
                    f"the embedded AWS exited at start (code {proc.returncode}); "
                    f"see the end of {_log_file()}:\n{tail}"
                )
            state = _read_state()
            if state and state.get("pid") == proc.pid and _healthy(state["endpoint"]):
                return state["endpoint"]
            time.sleep(0.1)
        proc.kill()
        raise LocalAWSError(f"the embedded AWS did not answer within {timeout:.0f} s; see {_log_file()}")


def _healthy(endpoint: str) -> bool:
    try:
        return _call("GET", endpoint, "status", timeout=2).ok
    except (requests.RequestException, LocalAWSError):
        return False


def credentials() -> dict[str, str]:
    """The credentials of the embedded AWS of this ECOM_HOME (``aws_access_key_id``,
    ``aws_secret_access_key``), made when it started; readable by its user only."""
    found = auth.read_credentials(settings().home)
    if not found:
        raise LocalAWSError(f"the embedded AWS's credentials ({auth.CREDENTIALS_FILE}) cannot be read: "
                            "it is not running, or was started by another user")
    return found


def _call(method: str, endpoint: str, route: str, body: dict | None = None, timeout: float = 60) -> requests.Response:
    """A request to a control route, signed with the embedded AWS's credentials (SigV4)."""
    url = f"{endpoint}{CONTROL}/{route}"
    data = json.dumps(body).encode() if body is not None else b""
    headers = auth.sign(method, url, data, credentials(), settings().region or "us-east-1")
    return requests.request(method, url, data=data or None, headers=headers, timeout=timeout)


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def status() -> dict | None:
    """What the running embedded AWS reports about itself, or None when it is not running."""
    state = _running_state()
    if not state:
        return None
    try:
        response = _call("GET", state["endpoint"], "status", timeout=5)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, LocalAWSError):
        return None


def drain(timeout: float = 300) -> dict:
    """Let the embedded AWS finish all pending background work (e.g. stream records not
    yet given to their functions) now; returns what was done."""
    state = _running_state()
    if not state:
        return {}
    response = _call("POST", state["endpoint"], "drain", timeout=timeout)
    response.raise_for_status()
    return response.json()["drained"]


def control(route: str, body: dict | None = None, timeout: float = 900) -> dict:
    """POST ``body`` to a component's control route (e.g. ``scheduler/advance``) and return its answer."""
    state = _running_state()
    if not state:
        raise LocalAWSError("the embedded AWS is not running")
    response = _call("POST", state["endpoint"], route, body or {}, timeout=timeout)
    if response.status_code == 400:
        raise ValueError(response.json().get("message", response.text))
    response.raise_for_status()
    return response.json()


def reset() -> None:
    """Forget every resource in the embedded AWS (the process keeps running)."""
    state = _running_state()
    if state:
        _call("POST", state["endpoint"], "reset", timeout=60).raise_for_status()


def stop(timeout: float = 10) -> bool:
    """Stop the embedded AWS and everything it started. True if it was running."""
    state = _running_state()
    if not state:
        _state_file().unlink(missing_ok=True)  # stale file of a process that died
        return False
    pid = state["pid"]
    portable.stop_group(pid)  # the server leads its own process group
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        portable.stop_group(pid, force=True)
    _state_file().unlink(missing_ok=True)
    return True


# --------------------------------------------------------------------------------------
# Server side: what runs inside the background process.
# --------------------------------------------------------------------------------------

class EmbeddedAWS:
    """The gap-fillers that run inside the process, one object each, in start order; every
    lifecycle step is a loop over them (see ``ecomlib.local.component``)."""

    def __init__(self, authenticator: auth.Authenticator | None = None) -> None:
        from ecomlib.local.api_front import ApiFront
        from ecomlib.local.firehose import Firehose
        from ecomlib.local.iam_enforcement import IamEnforcement
        from ecomlib.local.lambda_runtime import LambdaRuntime
        from ecomlib.local.redshift_data import RedshiftData
        from ecomlib.local.scheduler import Scheduler
        from ecomlib.local.stream_pollers import StreamPollers

        self.authenticator = authenticator  # who signed each request (checked before moto sees it)
        self.iam = IamEnforcement(authenticator)  # checks role-signed calls against their roles' policies
        self.lambda_runtime = LambdaRuntime()  # runs deployed function code
        self.api_front = ApiFront(self.lambda_runtime)  # serves deployed API Gateway stages
        self.stream_pollers = StreamPollers(self.lambda_runtime)  # Kinesis -> Lambda event source mappings
        self.redshift_data = RedshiftData()  # Redshift Data API on DuckDB: Redshift SQL, COPY from S3
        self.firehose = Firehose(self.redshift_data)  # Kinesis -> Firehose -> S3 -> Redshift COPY
        self.scheduler = Scheduler(self.lambda_runtime)  # scheduled EventBridge rules -> Lambda
        self.components: list[Component] = [self.iam, self.lambda_runtime, self.api_front, self.stream_pollers,
                                            self.redshift_data, self.firehose, self.scheduler]

    def start(self, endpoint: str) -> None:
        for component in self.components:
            component.start(endpoint)

    def stop(self) -> None:
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception:  # noqa: BLE001  (stop the others all the same)
                logging.exception("stopping %s", component.name)

    def reset(self) -> None:
        """Reset moto and every component. Only moto's reset holds MOTO_LOCK: a component's
        hook may take its own lock, and its worker thread takes that lock before MOTO_LOCK,
        so holding MOTO_LOCK around the hooks could deadlock."""
        from moto.moto_api._internal.models import moto_api_backend

        for component in self.components:
            component.before_reset()
        with MOTO_LOCK:
            moto_api_backend.reset()
        if self.authenticator is not None:
            self.authenticator.forget_sessions()  # moto's STS sessions are gone
        for component in self.components:
            component.reset()

    def status(self) -> dict:
        body: dict = {"memory": {"peak_rss_mb": round(portable.max_rss_mb(), 1)}}  # this process, at its peak
        for component in self.components:
            body.update(component.status())
        return body

    def drain(self) -> dict:
        drained: dict = {}
        for component in self.components:
            drained.update(component.drain())
        return drained

    def control(self, route: str, request: dict) -> dict | None:
        """Every component's answer to ``route``, merged (faults/crash reaches several);
        None when no component has the route or none took the request."""
        answer = None
        for component in self.components:
            handler = component.routes().get(route)
            part = handler(request) if handler else None
            if part is not None:
                answer = {**(answer or {}), **part}
        return answer


class Serialised:
    """WSGI middleware: one AWS request at a time, plus the process's own control routes.

    AWS: every service is safe under concurrent clients (an UpdateItem with list_append
    from 8 clients keeps all 8 appends). moto's backends are plain Python objects without
    locks, and concurrent requests lose writes (8 clients kept 1,490-1,981 of 2,000
    list_append updates). Serialising requests makes each one atomic. Lambda Invoke is
    let through unlocked, because the function it runs calls back into this server.

    Before anything else, every request's signature is checked (``ecomlib.local.auth``):
    a refused request never reaches moto or a control route.
    """

    def __init__(self, app: Callable, endpoint: str, aws: EmbeddedAWS,
                 authenticator: auth.Authenticator | None = None) -> None:
        self.app = app
        self.endpoint = endpoint
        self.aws = aws
        self.lock = MOTO_LOCK
        self.authenticator = authenticator

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        refused = self.authenticate(environ)
        if refused is not None:
            status, headers, body = refused
            start_response(status, headers)
            return [body]
        try:
            if path.startswith(CONTROL + "/"):
                return self.control(environ, start_response, path[len(CONTROL) + 1:])
            if path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"):
                return list(self.app(environ, start_response))
            with self.lock:
                # Build the whole response inside the lock: moto may compute it lazily.
                return list(self.app(environ, start_response))
        finally:
            if self.authenticator is not None:
                self.authenticator.set_caller(None)

    def authenticate(self, environ: dict) -> tuple[str, list, bytes] | None:
        """Check the request's signature; None when it is good (the caller is then
        ``authenticator.caller()`` on this thread), else AWS's refusal to send."""
        if self.authenticator is None:
            return None
        self.authenticator.set_caller(None)
        import io
        import uuid

        size = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        body = stream.read(int(size)) if size else (stream.read() if environ.get("wsgi.input_terminated") else b"")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = environ[name]
        raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")).split("?")[0]
        query = environ.get("QUERY_STRING", "")
        try:
            caller, _ = self.authenticator.verify(environ.get("REQUEST_METHOD", "GET"), raw_path, query, headers, body)
        except auth.Refused as refused:
            service = getattr(refused, "service", None)
            protocol = auth.protocol_of(service, headers, raw_path, query, body)
            logging.getLogger("ecomlib.auth").info("refused %s %s: %s", environ.get("REQUEST_METHOD"), raw_path,
                                                   refused.kind)
            return auth.error_response(refused.kind, protocol, refused.detail, service, str(uuid.uuid4()))
        self.authenticator.set_caller(caller)
        return None

    def control(self, environ: dict, start_response: Callable, route: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        if route == "status" and method == "GET":
            body: dict = {"endpoint": self.endpoint, "pid": os.getpid(), "apis": {}, **self.aws.status()}
        elif route == "drain" and method == "POST":
            body = {"drained": self.aws.drain()}
        elif route == "reset" and method == "POST":
            self.aws.reset()
            body = {"reset": True}
        elif route == "time/scale" and method == "POST":  # {"scale": 0..1}: AWS's delays x scale
            from ecomlib.local import aws_time

            size = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(size) or b"{}") if size else {}
            body = {"previous": aws_time.set_scale(float(request.get("scale", aws_time.DEFAULT_SCALE)))}
        else:
            answer = None
            if method == "POST":
                try:
                    size = int(environ.get("CONTENT_LENGTH") or 0)
                    request = json.loads(environ["wsgi.input"].read(size) or b"{}") if size else {}
                    answer = self.aws.control(route, request)
                except (ValueError, LookupError) as exc:  # a bad request: say why
                    start_response("400 Bad Request", [("Content-Type", "application/json")])
                    return [json.dumps({"message": str(exc)}).encode()]
            if answer is None:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [json.dumps({"message": f"no route {method} {route}"}).encode()]
            body = answer
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


def serve(port: int = 0) -> None:
    """Run the embedded AWS in this process until SIGTERM or SIGINT."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    from ecomlib.local import patches

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    os.umask(0o077)  # whatever this process (and the functions it runs) writes: its user's only
    home = auth.secure_home(settings().home)
    authenticator = auth.Authenticator(auth.create_credentials(home))
    aws = EmbeddedAWS(authenticator)
    patches.apply(aws)

    moto_app = DomainDispatcherApplication(create_backend_app)
    app = Serialised(moto_app, endpoint="", aws=aws, authenticator=authenticator)
    class RequestHandler(WSGIRequestHandler):
        disable_nagle_algorithm = True  # reply at once, not after a 40 ms delayed ACK

    httpd = make_server(HOST, port, app, threaded=True, request_handler=RequestHandler)
    endpoint = f"http://{HOST}:{httpd.server_port}"
    app.endpoint = endpoint

    aws.start(endpoint)

    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    state = {"pid": os.getpid(), "endpoint": endpoint, "started": time.time()}
    state_file = _state_file()
    auth.write_private(state_file, json.dumps(state))
    logging.info("embedded AWS serving on %s", endpoint)
    try:
        httpd.serve_forever()
    finally:
        aws.stop()
        state = _read_state()
        if state and state.get("pid") == os.getpid():
            state_file.unlink(missing_ok=True)
        logging.info("embedded AWS stopped")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the background process (``python -m ecomlib.local``)."""
    parser = argparse.ArgumentParser(description="Run the embedded AWS in the foreground.")
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: a free one)")
    args = parser.parse_args(argv)
    auth.secure_home(settings().home)
    serve(args.port)
