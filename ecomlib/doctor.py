"""``python -m ecomlib doctor`` (``./course doctor``): is this machine ready for the course?

One line per check, ``ok``, ``warn`` or ``FAIL``, and under each failure the fix. The exit
code is 1 when a check failed. The checks, cheapest first:

- Python: 3.11 or newer;
- disk: free space where ``.venv`` and the embedded AWS's state (``ECOM_HOME``) live;
- ports: a port can be opened on 127.0.0.1; ``ECOM_LOCAL_PORT`` (if set) and JupyterLab's 8888
  are free;
- packages: what the notebooks import is installed;
- the embedded AWS starts, and a tiny pipeline runs end to end: a Lambda function (run by the
  embedded AWS's Lambda runtime) puts a record into a Kinesis stream, which is read back.

The last two run on a *private* embedded AWS (its own temporary ``ECOM_HOME``, its own port,
resource names starting with ``ecom-doctor-``), stopped and deleted at the end: the doctor
never touches a learner's running embedded AWS or their resources. They are skipped when
``ECOM_TARGET`` is not ``local``: the doctor creates nothing on a real account.

This module imports only the standard library at import time, so the launcher
(``course.py``) can run the first checks before anything is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
MIN_PYTHON = (3, 11)
MIN_FREE_DISK_MB = 1500  # the learner's .venv (~0.6 GB), the embedded AWS's state, the data
JUPYTER_PORT = 8888
PREFIX = "ecom-doctor"
# What the notebooks and the embedded AWS import (module names), from requirements.txt.
PACKAGES = ["boto3", "moto", "flask", "pandas", "numpy", "matplotlib", "duckdb", "sqlglot", "openpyxl",
            "requests", "tqdm", "ipywidgets", "ipykernel", "jupyterlab", "awscli"]


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn", "FAIL" or "skip"
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        text = f"[{self.status:>4}] {self.name}: {self.detail}"
        if self.fix:
            text += f"\n       fix: {self.fix}"
        return text


def check_python(version: tuple = tuple(sys.version_info[:3])) -> Check:
    shown = ".".join(map(str, version))
    if tuple(version[:2]) < MIN_PYTHON:
        return Check("python", "FAIL", f"Python {shown} is too old (the course needs 3.11 or newer)",
                     "install Python 3.11+ (python.org, your package manager, or pyenv) and run "
                     "`PYTHON=python3.11 ./course setup` (Windows: `py -3.11 course.py setup`)")
    return Check("python", "ok", f"Python {shown} on {platform.system()} {platform.machine()}")


def _free_mb(path: Path) -> float:
    while not path.exists():  # ECOM_HOME may not exist yet: its nearest existing parent
        path = path.parent
    return shutil.disk_usage(path).free / 1e6


def check_disk(paths: list[Path] | None = None, need_mb: float = MIN_FREE_DISK_MB) -> Check:
    if paths is None:
        from ecomlib.config import settings

        paths = [REPO, settings().home]
    short = [(p, _free_mb(p)) for p in paths]
    worst_path, worst = min(short, key=lambda pair: pair[1])
    if worst < need_mb:
        return Check("disk", "FAIL", f"{worst:,.0f} MB free where the course writes; it needs about "
                     f"{need_mb:,.0f} MB",
                     "free some disk space, or clone the course onto a disk with room (the embedded AWS's "
                     "state can go elsewhere with ECOM_HOME=/path/with/room)")
    return Check("disk", "ok", f"{worst:,.0f} MB free (needs about {need_mb:,.0f} MB)")


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(local_port: int | None = None, jupyter_port: int = JUPYTER_PORT) -> list[Check]:
    checks = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            with socket.create_connection(sock.getsockname(), timeout=5):
                pass
        checks.append(Check("loopback", "ok", "a port on 127.0.0.1 opens and answers"))
    except OSError as error:
        checks.append(Check("loopback", "FAIL", f"cannot open a port on 127.0.0.1 ({error})",
                            "the embedded AWS and JupyterLab listen on 127.0.0.1: allow local connections in "
                            "your firewall or security software, or ask the instructor for the no-install "
                            "path (Codespaces or Binder)"))
    if local_port is None:
        from ecomlib.config import settings

        local_port = settings().local_port
    if local_port:
        if _port_free(local_port) or _own_server_on(local_port):
            checks.append(Check("ECOM_LOCAL_PORT", "ok", f"port {local_port} is free for the embedded AWS"))
        else:
            checks.append(Check("ECOM_LOCAL_PORT", "FAIL", f"port {local_port} on 127.0.0.1 is in use by "
                                "another program", "unset ECOM_LOCAL_PORT (a free port is picked), or set it to "
                                "a free port"))
    if _port_free(jupyter_port):
        checks.append(Check("jupyter port", "ok", f"port {jupyter_port} is free for JupyterLab"))
    else:
        checks.append(Check("jupyter port", "warn", f"port {jupyter_port} is in use (another JupyterLab?)",
                            f"none needed: JupyterLab takes the next free port; open the URL it prints "
                            f"(or stop the other one with `jupyter lab stop {jupyter_port}`)"))
    return checks


def _own_server_on(port: int) -> bool:
    """Is the port held by this ECOM_HOME's embedded AWS (then it is not a conflict)?"""
    with contextlib.suppress(Exception):
        from ecomlib.local import server

        info = server.status()
        return bool(info) and info["endpoint"].endswith(f":{port}")
    return False


def check_packages(names: list[str] = PACKAGES) -> Check:
    missing = [name for name in names if importlib.util.find_spec(name) is None]  # found, not imported
    if missing:
        return Check("packages", "FAIL", f"not installed: {', '.join(missing)}",
                     "run `./course setup` (Windows: `py course.py setup`), then start JupyterLab with "
                     "`./course lab` so the notebooks use the course's .venv")
    return Check("packages", "ok", f"{len(names)} packages the notebooks use are importable")


# ---- the embedded AWS and a tiny pipeline ---------------------------------------------

HANDLER = '''\
import json, os
import boto3

def lambda_handler(event, context):
    kinesis = boto3.client("kinesis")
    kinesis.put_record(StreamName=os.environ["STREAM"], Data=json.dumps(event).encode(),
                       PartitionKey=str(event["n"]))
    return {"sent": event["n"], "function": context.function_name}
'''

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@contextlib.contextmanager
def private_embedded_aws() -> Iterator[str]:
    """Start an embedded AWS of the doctor's own (temporary ECOM_HOME, a free port) and yield
    its endpoint; stop it and delete its state afterwards, whatever happens."""
    saved = {name: os.environ.get(name) for name in ("ECOM_HOME", "ECOM_LOCAL_PORT", "ECOM_PREFIX", "ECOM_TARGET")}
    home = tempfile.mkdtemp(prefix="ecomlib-doctor-")
    os.environ.update(ECOM_HOME=home, ECOM_PREFIX=PREFIX, ECOM_TARGET="local")
    os.environ.pop("ECOM_LOCAL_PORT", None)
    from ecomlib.local import server

    try:
        yield server.start(timeout=60)
    finally:
        try:
            server.stop()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            shutil.rmtree(home, ignore_errors=True)


def tiny_pipeline(endpoint: str) -> str:
    """Lambda -> Kinesis -> read back, on ``endpoint``; returns what was read (raises on failure)."""
    import boto3

    from ecomlib.deploy import retry_while_propagating
    from ecomlib.local import server

    credentials = server.credentials()  # the embedded AWS's own (it refuses any other)

    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **credentials)

    stream, function = f"{PREFIX}-stream", f"{PREFIX}-putter"
    kinesis, lam, iam = client("kinesis"), client("lambda"), client("iam")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    role = iam.create_role(RoleName=f"{PREFIX}-role", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    iam.put_role_policy(RoleName=f"{PREFIX}-role", PolicyName="put-one-record", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": stream_arn},
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}))
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", HANDLER)
    retry_while_propagating(lambda: lam.create_function(  # a new role is usable after a few seconds
        FunctionName=function, Runtime="python3.11", Role=role, Handler="handler.lambda_handler",
        Code={"ZipFile": package.getvalue()}, Timeout=30, Environment={"Variables": {"STREAM": stream}}),
        "creating the doctor's function")
    lam.get_waiter("function_active_v2").wait(FunctionName=function, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    answer = lam.invoke(FunctionName=function, Payload=json.dumps({"n": 1, "doctor": True}).encode())
    body = answer["Payload"].read().decode()
    if answer.get("FunctionError"):
        raise RuntimeError(f"the Lambda function failed: {body}")
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    if len(records) != 1 or json.loads(records[0]["Data"]) != {"n": 1, "doctor": True}:
        raise RuntimeError(f"expected the one record the function sent, read {records!r}")
    return records[0]["Data"].decode()


def check_embedded_aws() -> list[Check]:
    from ecomlib.config import settings

    target = settings().target
    if target != "local":
        why = f"ECOM_TARGET={target}: the doctor creates nothing outside the embedded AWS"
        return [Check("embedded AWS", "skip", why), Check("tiny pipeline", "skip", why)]
    started = time.monotonic()
    try:
        with private_embedded_aws() as endpoint:
            checks = [Check("embedded AWS", "ok", f"started in {time.monotonic() - started:.1f} s")]
            started = time.monotonic()
            try:
                tiny_pipeline(endpoint)
            except Exception as error:  # noqa: BLE001  (any failure is reported, with its fix)
                checks.append(Check("tiny pipeline", "FAIL", f"{type(error).__name__}: {error}",
                                    "read the message above; if it names a module, run `./course setup`; "
                                    "otherwise show this output to the instructor"))
            else:
                checks.append(Check("tiny pipeline", "ok", "a Lambda function put a record into a Kinesis "
                                    f"stream and it was read back ({time.monotonic() - started:.1f} s)"))
            return checks
    except Exception as error:  # noqa: BLE001
        return [Check("embedded AWS", "FAIL", f"did not start: {type(error).__name__}: {error}",
                      "run `./course setup` again; if that does not help, run `python -m ecomlib.local` "
                      "to see the embedded AWS's own error in the foreground"),
                Check("tiny pipeline", "skip", "needs the embedded AWS")]


def run(aws: bool = True, packages: bool = True, out: Callable[[str], None] = print,
        before: tuple[Check, ...] = ()) -> list[Check]:
    """Run every check, printing one line each; returns the checks. (The launcher runs it
    without ``packages`` and ``aws`` when the course's environment could not be installed.)"""
    checks: list[Check] = []

    def report(*found: Check) -> None:
        for check in found:
            checks.append(check)
            out(check.line())

    report(*before)
    report(check_python())
    if sys.version_info[:2] < MIN_PYTHON:
        return checks  # the rest needs a supported Python
    report(check_disk())
    report(*check_ports())
    if packages:
        found = check_packages()
        report(found)
        aws = aws and not found.failed
    if aws:
        report(*check_embedded_aws())
    failed = [c.name for c in checks if c.failed]
    out(f"doctor: {len(failed)} problem(s): {', '.join(failed)}" if failed else "doctor: ready for the course")
    return checks


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ecomlib doctor", description=__doc__.split("\n")[0])
    parser.add_argument("--no-aws", action="store_true", help="skip starting the embedded AWS and the pipeline")
    args = parser.parse_args(argv)
    return 1 if any(c.failed for c in run(aws=not args.no_aws)) else 0


if __name__ == "__main__":
    sys.exit(main())
