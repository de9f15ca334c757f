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

AWS also makes callers wait and refuses what it cannot do yet, and so does this runtime
(plugged into moto by ``patches._patch_lambda_strictness``):

- a new function is ``Pending`` (``StateReasonCode: Creating``) for a moment, an updated
  one ``LastUpdateStatus: InProgress``; Invoke of a ``Pending`` function and an update
  during either are refused with ``ResourceConflictException`` (AWS's messages), and
  callers wait with the ``function_active_v2`` / ``function_updated_v2`` waiters;
- a synchronous request over 6 MB is refused (``RequestEntityTooLargeException``), a
  response over 6 MB becomes ``Function.ResponseSizeTooLarge``;
- reserved concurrency may not take the account's unreserved concurrency below its
  minimum: the quota is ``ECOM_LAMBDA_CONCURRENCY_QUOTA`` (default 10, a new account's),
  the minimum ``ECOM_LAMBDA_UNRESERVED_MINIMUM`` (default: 100, or the quota if lower).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
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

from ecomlib import portable
from ecomlib.local import aws_time
from ecomlib.local.component import Component, Route
from ecomlib.local.iam_enforcement import CREDENTIALS_SECONDS, role_credentials
from ecomlib.local.lambda_worker import read_message, write_message

log = logging.getLogger("ecomlib.lambda")

MAX_WORKERS_PER_FUNCTION = 4

# Lambda quotas (Lambda developer guide, "Lambda quotas"): 6 MB for a synchronous
# invocation's request and for its response.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
REQUEST_TOO_LARGE = f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
# AWS's own text (its number is 100 bytes more than the limit it enforces).
RESPONSE_TOO_LARGE = "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
CALLER_TIMED_OUT = "Caller.TimedOut"  # the caller stopped waiting (not an AWS error type: never shown)
IN_PROGRESS = "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
NOT_ACTIVE = "The operation cannot be performed at this time. The function is currently in the following state: {state}"
UNRESERVED_BELOW_MINIMUM = ("Specified ReservedConcurrentExecutions for function decreases account's "
                            "UnreservedConcurrentExecution below its minimum value of [{minimum}].")


def concurrency_quota() -> tuple[int, int]:
    """(the account's concurrent executions, the minimum kept unreserved): a new account
    has 10 and keeps all 10 unreserved; the usual quota is 1,000 with 100 kept."""
    quota = int(os.environ.get("ECOM_LAMBDA_CONCURRENCY_QUOTA") or 10)
    minimum = int(os.environ.get("ECOM_LAMBDA_UNRESERVED_MINIMUM") or min(100, quota))
    return quota, minimum


class LambdaConflict(Exception):
    """An operation AWS refuses with ResourceConflictException (the message says why)."""


class PayloadTooLarge(Exception):
    """A synchronous Invoke request over 6 MB (AWS: 413 RequestEntityTooLargeException)."""


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
    initialised: bool = False  # its first invocation logged INIT_START

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
        # (region, function name) -> ("create" or "update", when it is done): see state_of()
        self._changes: dict[tuple[str, str], tuple[str, aws_time.Pending]] = {}
        self._warned: set[str] = set()  # runtimes already warned about (see init_line)

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
        self._changes.clear()

    # ---- function states ---------------------------------------------------------------

    def created(self, fn) -> None:
        """CreateFunction: the function is Pending for a moment."""
        self._changes[(fn.region, fn.function_name)] = ("create", aws_time.Pending("lambda_pending"))

    def settled(self, fn) -> None:
        """The function is Active and its last update done (a stack's resource is complete
        only then: CloudFormation waits for it)."""
        self._changes.pop((fn.region, fn.function_name), None)

    def updating(self, fn) -> None:
        """UpdateFunctionCode/Configuration: refused while a change is in progress, else InProgress."""
        if self._busy(fn):
            raise LambdaConflict(IN_PROGRESS.format(arn=fn.function_arn))
        self._changes[(fn.region, fn.function_name)] = ("update", aws_time.Pending("lambda_update"))

    def _busy(self, fn) -> str | None:
        change = self._changes.get((fn.region, fn.function_name))
        if change is None or change[1].ready:
            return None
        return change[0]

    def state_of(self, fn, config: dict) -> dict:
        """``config`` (GetFunctionConfiguration's answer) with the function's State and
        LastUpdateStatus as AWS gives them at this moment."""
        busy = self._busy(fn)
        if busy == "create":
            # LastUpdateStatus "is first set to Successful after function creation completes"
            config.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
            config.pop("LastUpdateStatus", None)
        elif busy == "update":  # as AWS's example of a function being updated shows it
            config.update(State="Active", LastUpdateStatus="InProgress",
                          LastUpdateStatusReason="The function is being created.",
                          LastUpdateStatusReasonCode="Creating")
        else:
            config.update(State="Active", LastUpdateStatus="Successful")
            for key in ("StateReason", "StateReasonCode", "LastUpdateStatusReason", "LastUpdateStatusReasonCode"):
                config.pop(key, None)
        return config

    def check_invocable(self, fn) -> None:
        """Invoke of a Pending function is refused (AWS: "Lambda does not invoke a function
        during pending state"); during an update AWS runs the previous code, here the new."""
        if self._busy(fn) == "create":
            raise LambdaConflict(NOT_ACTIVE.format(state="Pending"))

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

    def invoke(self, fn, event: bytes | str, invocation_type: str = "RequestResponse",
               wait_limit: float | None = None) -> InvokeResult:
        """Run one invocation of moto function model ``fn`` and wait for its result.

        ``invocation_type="Event"`` runs it in the background and returns at once (as AWS
        queues asynchronous invocations); errors then appear only in its logs.
        ``wait_limit``: stop waiting after this many seconds (the result's errorType is then
        :data:`CALLER_TIMED_OUT`; the invocation goes on to its end).
        """
        if isinstance(event, bytes):
            event = event.decode("utf-8")
        if invocation_type == "Event":
            threading.Thread(target=self._run, args=(fn, event), daemon=True).start()
            return InvokeResult(payload=b"")
        return self._run(fn, event, wait_limit)

    def moto_invoke(self, fn, body, request_headers: dict, response_headers: dict) -> bytes:
        """moto's ``LambdaFunction.invoke`` (same request and response), run here: see ``patches``."""
        invocation_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return b""
        event = body if isinstance(body, str) and body else (json.dumps(body) if body else "{}")
        self.check_invocable(fn)
        if invocation_type == "RequestResponse" and len(event.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(REQUEST_TOO_LARGE)
        result = self.invoke(fn, event, invocation_type)
        if invocation_type == "Event":
            return b""
        if result.error is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
        if request_headers.get("x-amz-log-type") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(result.logs.encode()[-4096:]).decode()
        response_headers["x-amz-executed-version"] = "$LATEST"
        return result.payload

    def _run(self, fn, event: str, wait_limit: float | None = None) -> InvokeResult:
        """Run one invocation and wait for it, or for ``wait_limit`` seconds at most (a caller
        that gives up sooner, as API Gateway does after 29 s: the invocation runs on to its
        own end in the background, and its result is logged only)."""
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
        try:
            write_message(worker.proc.stdin, {
                "event": event, "request_id": request_id, "deadline_ms": deadline_ms,
                "invoked_arn": fn.function_arn,
            })
        except (BrokenPipeError, OSError) as exc:
            return self._complete(pool, worker, fn, request_id, started, timeout, failed=str(exc))
        if wait_limit is not None and wait_limit < timeout:
            if not portable.wait_readable(worker.proc.stdout, wait_limit):
                threading.Thread(target=self._complete, args=(pool, worker, fn, request_id, started, timeout),
                                 daemon=True).start()
                return InvokeResult(payload=b"", error={"errorType": CALLER_TIMED_OUT}, request_id=request_id)
        return self._complete(pool, worker, fn, request_id, started, timeout)

    def _complete(self, pool: FunctionPool, worker: Worker, fn, request_id: str, started: float, timeout: float,
                  failed: str | None = None) -> InvokeResult:
        """Wait for the worker's answer until the function's timeout, release the worker,
        write the logs and shape the result."""
        reusable = False
        try:
            if failed is not None:
                raise OSError(failed)
            left = max(0.0, timeout - (time.monotonic() - started))
            if not portable.wait_readable(worker.proc.stdout, left):
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
        if not worker.initialised:  # a cold start: say which Python runs the code, as AWS's INIT_START does
            worker.initialised = True
            logs = init_line(fn.run_time) + logs
            if "WARNING" in logs.partition("\n")[0] and fn.run_time not in self._warned:
                self._warned.add(fn.run_time)  # once per runtime in the server's log too
                log.warning("functions declare %s but run on this machine's Python %s", fn.run_time,
                            "{}.{}".format(*sys.version_info[:2]))
        _save_logs(fn, worker.log_stream, logs)
        payload = json.dumps(error).encode() if error else response["payload"].encode()
        if error is None and len(payload) > MAX_PAYLOAD_BYTES:
            error = {"errorMessage": RESPONSE_TOO_LARGE, "errorType": "Function.ResponseSizeTooLarge"}
            payload = json.dumps(error).encode()
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
            **portable.child_env(),
            "PATH": os.environ.get("PATH", os.defpath),
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


def init_line(runtime: str) -> str:
    """The INIT_START line of a new execution environment. AWS: ``INIT_START Runtime Version:
    python:3.13.v16 ...``, the runtime the function declares. Here the code runs on this
    machine's Python: the line says which, and warns when it is not the declared one (code
    that works here may then fail on AWS, or the other way round)."""
    local = "{}.{}".format(*sys.version_info[:2])
    line = f"INIT_START Runtime Version: python:{sys.version.split()[0]} (the embedded AWS's Python)"
    if runtime != f"python{local}":
        line += (f"\tWARNING: the function declares {runtime}; here it runs on Python {local}, "
                 f"on AWS on {runtime.replace('python', 'Python ')}")
    return line + "\n"


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

    from ecomlib.local.component import MOTO_LOCK

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
