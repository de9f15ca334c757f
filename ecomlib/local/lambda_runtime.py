"""Run deployed Lambda functions: the code moto stores but cannot execute.

AWS: Invoke runs the function's code in an execution environment (a micro-VM) built from
the deployment package, with the function's environment variables, a context object, a
timeout, and its output in CloudWatch Logs group ``/aws/lambda/<name>``. Environments are
reused between invocations ("warm starts") and a new one is made when the code changes.

moto 5.2 without Docker: Invoke returns "error running docker" and never runs the code.

Here: each function gets its own worker processes (``lambda_worker``), started from the
zip stored in moto, in the function's code directory, with only its own environment
variables plus ``AWS_ENDPOINT_URL`` pointing back at the embedded AWS, so handler code
runs unchanged. One worker runs one invocation at a time; a busy function gets more
workers, up to ``MAX_WORKERS_PER_FUNCTION`` (or its reserved concurrency, if lower:
invocations beyond it wait for a worker where AWS would throttle them). Redeployed code
starts fresh workers.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from moto.core import DEFAULT_ACCOUNT_ID

from ecomlib.local.component import Component, Route
from ecomlib.local.iam_enforcement import CREDENTIALS_SECONDS, role_credentials
from ecomlib.local.lambda_worker import read_message, write_message

log = logging.getLogger("ecomlib.lambda")

MAX_WORKERS_PER_FUNCTION = 4


@dataclass
class InvokeResult:
    """What an invocation returned: the payload (JSON bytes) or an AWS-shaped error."""

    payload: bytes
    error: dict | None = None
    logs: str = ""
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(eq=False)
class Worker:
    """One execution environment of one version of one function's code."""

    proc: subprocess.Popen
    log_stream: str
    function: str = ""
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()


class FunctionPool:
    """The idle workers of one function version, and how many exist."""

    def __init__(self) -> None:
        self.idle: list[Worker] = []
        self.count = 0
        self.retired = False  # set when a new version of the code replaces this one
        self.available = threading.Condition()


def get_function(name_or_arn: str, region: str | None = None):
    """moto's model of a deployed function (by name or ARN)."""
    from moto.awslambda.models import lambda_backends

    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        region, name = parts[3], parts[6]
    else:
        name = name_or_arn
    return lambda_backends[DEFAULT_ACCOUNT_ID][region or "us-east-1"].get_function(name, None)


class LambdaRuntime(Component):
    """The execution environments of every deployed function, and the code they run."""

    name = "lambda"

    def __init__(self) -> None:
        self.endpoint = ""
        self.code_root: Path | None = None
        self._pools: dict[tuple, FunctionPool] = {}
        self._live: set[Worker] = set()  # every worker process, busy or idle (see crash())
        self._pools_lock = threading.Lock()

    # ---- lifecycle --------------------------------------------------------------------

    def start(self, endpoint: str) -> None:
        """Remember the endpoint (functions call back into it) and where code is unpacked."""
        from ecomlib.config import settings

        self.endpoint = endpoint
        self.code_root = settings().home / "lambda" / str(os.getpid())
        self.code_root.mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        """Stop every worker and delete the unpacked code."""
        self._kill_all()
        if self.code_root:
            shutil.rmtree(self.code_root, ignore_errors=True)

    def before_reset(self) -> None:
        self._kill_all()

    def _kill_all(self) -> None:
        with self._pools_lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            self._retire(pool)

    def _retire(self, pool: FunctionPool) -> None:
        with pool.available:
            pool.retired = True
            for worker in pool.idle:
                self._kill(worker)
            pool.idle.clear()

    def _kill(self, worker: Worker) -> None:
        self._live.discard(worker)
        worker.kill()

    def routes(self) -> dict[str, Route]:
        return {"faults/crash": self._crash_route}

    def _crash_route(self, body: dict) -> dict | None:
        """``faults/crash`` ``{"functions": [names] or "all"}``: see :meth:`crash`."""
        if "functions" not in body:
            return None
        functions = body["functions"]
        return {"killed": self.crash(None if functions == "all" else list(functions))}

    def crash(self, functions: list[str] | None = None) -> int:
        """Kill the execution environments of ``functions`` (default: all) at once, busy ones
        included, as if the machines running them failed. An invocation in flight ends with
        ``Runtime.ExitError``, and its caller (a stream poller, API Gateway) handles that as on
        AWS: the poller retries the batch from its checkpoint. Returns how many were killed."""
        doomed = [w for w in list(self._live) if functions is None or w.function in functions]
        for worker in doomed:
            if worker.alive():
                worker.proc.kill()
        log.warning("crashed %d execution environments", len(doomed))
        return len(doomed)

    # ---- invoking ---------------------------------------------------------------------

    def invoke(self, fn, event: bytes | str, invocation_type: str = "RequestResponse") -> InvokeResult:
        """Run one invocation of moto function model ``fn`` and wait for its result.

        ``invocation_type="Event"`` runs it in the background and returns at once (as AWS
        queues asynchronous invocations); errors then appear only in its logs.
        """
        if isinstance(event, bytes):
            event = event.decode("utf-8")
        if invocation_type == "Event":
            threading.Thread(target=self._run, args=(fn, event), daemon=True).start()
            return InvokeResult(payload=b"")
        return self._run(fn, event)

    def moto_invoke(self, fn, body, request_headers: dict, response_headers: dict) -> bytes:
        """moto's ``LambdaFunction.invoke`` (same request and response), run here: see ``patches``."""
        invocation_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return b""
        event = body if isinstance(body, str) and body else (json.dumps(body) if body else "{}")
        result = self.invoke(fn, event, invocation_type)
        if invocation_type == "Event":
            return b""
        if result.error is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
        if request_headers.get("x-amz-log-type") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(result.logs.encode()[-4096:]).decode()
        response_headers["x-amz-executed-version"] = "$LATEST"
        return result.payload

    def _run(self, fn, event: str) -> InvokeResult:
        request_id = str(uuid.uuid4())
        # A new environment for new code or a new configuration (moto does not change
        # LastModified when only the configuration is updated).
        key = (fn.function_arn, fn.code_sha_256, fn.last_modified, fn.handler, fn.timeout, fn.memory_size, fn.role,
               json.dumps(fn.environment_vars, sort_keys=True))
        pool = self._pool(key, fn)
        worker = self._acquire(pool, fn)
        started = time.monotonic()
        timeout = float(fn.timeout)
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        reusable = False
        try:
            write_message(worker.proc.stdin, {
                "event": event, "request_id": request_id, "deadline_ms": deadline_ms,
                "invoked_arn": fn.function_arn,
            })
            ready, _, _ = select.select([worker.proc.stdout], [], [], timeout)
            if not ready:
                response = {"ok": False, "logs": "", "error": {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                }}
            else:
                response = read_message(worker.proc.stdout)
                if response is None:
                    response = {"ok": False, "logs": "", "error": {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {request_id} Error: Runtime exited without providing a reason",
                    }}
                else:
                    reusable = True
        except (BrokenPipeError, OSError) as exc:
            response = {"ok": False, "logs": "", "error": {"errorType": "Runtime.ExitError", "errorMessage": str(exc)}}
        finally:
            self._release(pool, worker, reusable)

        duration_ms = (time.monotonic() - started) * 1000
        error = response.get("error")
        if error is not None:
            error.setdefault("requestId", request_id)
        logs = _log_lines(fn, request_id, response, duration_ms)
        _save_logs(fn, worker.log_stream, logs)
        payload = json.dumps(error).encode() if error else response["payload"].encode()
        return InvokeResult(payload=payload, error=error, logs=logs, request_id=request_id)

    # ---- execution environments -------------------------------------------------------

    def _pool(self, key: tuple, fn) -> FunctionPool:
        with self._pools_lock:
            pool = self._pools.get(key)
            if pool is None:
                # Code or configuration changed: retire the old version's environments.
                for old_key in [k for k in self._pools if k[0] == key[0]]:
                    old = self._pools.pop(old_key)
                    self._retire(old)
                pool = self._pools[key] = FunctionPool()
            return pool

    def _acquire(self, pool: FunctionPool, fn) -> Worker:
        with pool.available:
            while True:
                while pool.idle:
                    worker = pool.idle.pop()
                    # An environment whose role credentials are about to expire is replaced.
                    if worker.alive() and time.monotonic() - worker.started < CREDENTIALS_SECONDS - 900:
                        return worker
                    self._kill(worker)
                    pool.count -= 1
                if pool.count < self._max_workers(fn):
                    pool.count += 1
                    break
                pool.available.wait()
        try:
            return self._spawn(fn)
        except BaseException:
            with pool.available:
                pool.count -= 1
                pool.available.notify()
            raise

    @staticmethod
    def _max_workers(fn) -> int:
        """At most MAX_WORKERS_PER_FUNCTION, or the function's reserved concurrency if lower
        (AWS runs no more than ``ReservedConcurrentExecutions`` at once; here extra
        invocations wait for a free worker instead of being throttled)."""
        reserved = getattr(fn, "reserved_concurrency", None)
        if reserved:
            return max(1, min(MAX_WORKERS_PER_FUNCTION, int(reserved)))
        return MAX_WORKERS_PER_FUNCTION

    def _release(self, pool: FunctionPool, worker: Worker, reusable: bool) -> None:
        with pool.available:
            if reusable and worker.alive() and not pool.retired:
                pool.idle.append(worker)
            else:
                self._kill(worker)
                pool.count -= 1
            pool.available.notify()

    def _code_dir(self, fn) -> Path:
        """The function's deployment package, unpacked once per code version."""
        assert self.code_root is not None, "LambdaRuntime.start() was not called"
        target = self.code_root / f"{fn.function_name}-{fn.code_sha_256[:16].replace('/', '_').replace('+', '-')}"
        if not target.exists():
            tmp = target.with_name(target.name + f".{uuid.uuid4().hex}")
            with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as archive:
                archive.extractall(tmp)
            try:
                tmp.rename(target)
            except OSError:  # another invocation unpacked it first
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _spawn(self, fn) -> Worker:
        code = self._code_dir(fn)
        region = fn.region
        day = time.strftime("%Y/%m/%d", time.gmtime())
        log_stream = f"{day}/[$LATEST]{uuid.uuid4().hex}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONPATH": str(code),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LAMBDA_TASK_ROOT": str(code),
            "_HANDLER": fn.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # The function's own calls go back to the embedded AWS, signed with its role's
            # temporary credentials, as on AWS (never the learner's own keys): the embedded
            # AWS accepts them while they are valid, and IAM checks them against the role.
            "AWS_ENDPOINT_URL": self.endpoint,
            **(role_credentials(fn.role, fn.function_name, region) or {}),
            **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecomlib.local.lambda_worker"],
            cwd=code, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        )
        worker = Worker(proc=proc, log_stream=log_stream, function=fn.function_name)
        self._live.add(worker)
        return worker


def _log_lines(fn, request_id: str, response: dict, duration_ms: float) -> str:
    body = response.get("logs", "")
    if response.get("error", {}).get("errorType") == "Sandbox.Timedout":
        body += f"{response['error']['errorMessage']}\n"
    billed = max(1, int(duration_ms + 0.999))
    return (
        f"START RequestId: {request_id} Version: $LATEST\n{body}"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {fn.memory_size} MB\tMax Memory Used: {response.get('max_rss_mb', 0)} MB\n"
    )


def _save_logs(fn, stream: str, text: str) -> None:
    """Write log lines to CloudWatch Logs, one stream per execution environment (as AWS)."""
    from moto.core.utils import unix_time_millis

    from ecomlib.local.server import MOTO_LOCK

    now = int(unix_time_millis())
    events = [{"timestamp": now, "message": line} for line in text.splitlines() if line]
    logs, group = fn.logs_backend, fn.logs_group_name
    try:
        with MOTO_LOCK:
            logs.ensure_log_group(group)
            if stream not in logs.groups[group].streams:
                logs.create_log_stream(group, stream)
            if events:
                logs.put_log_events(group, stream, events)
    except Exception:  # noqa: BLE001  (logging must never break an invocation)
        log.exception("could not write logs of %s", fn.function_name)
