"""The embedded AWS without fork: started with multiprocessing's ``spawn`` (the only start
method on Windows, the default on macOS), and the portable process, pipe and lock calls."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import pytest

from ecomlib import doctor, portable
from ecomlib.local import server


def _serve_in_spawned_process() -> None:  # module level: spawn pickles the target by name
    server.main(["--port", "0"])


def _wait_for_state(home, pid: int, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = json.loads((home / "server.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            state = None
        if state and state["pid"] == pid and server._healthy(state["endpoint"]):
            return state["endpoint"]
        time.sleep(0.2)
    raise AssertionError("the spawned embedded AWS did not come up")


@pytest.mark.slow
def test_the_embedded_aws_and_its_lambda_runtime_run_under_spawn(tmp_path, monkeypatch):
    """A fresh interpreter (no inherited memory, as on Windows) runs the embedded AWS; its
    Lambda runtime starts execution environments, which run a function that writes to
    Kinesis; a SIGTERM-like stop ends the server and its workers."""
    home = tmp_path / "home"
    monkeypatch.setenv("ECOM_HOME", str(home))
    monkeypatch.delenv("ECOM_LOCAL_PORT", raising=False)
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_serve_in_spawned_process)
    process.start()
    try:
        endpoint = _wait_for_state(home, process.pid)
        assert json.loads(doctor.tiny_pipeline(endpoint)) == {"n": 1, "doctor": True}
    finally:
        process.terminate()  # SIGTERM on POSIX: the server stops its components, then exits
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join(10)
    assert process.exitcode == 0
    assert not (home / "server.json").exists(), "the server did not stop cleanly"
    code_root = home / "lambda" / str(process.pid)
    assert not code_root.exists(), "the Lambda runtime's unpacked code was left behind"


def test_pid_alive_tells_running_finished_and_zombie_processes_apart():
    assert portable.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert portable.pid_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while portable.pid_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not portable.pid_alive(child.pid)  # a zombie until waited for: not alive
    finally:
        child.kill()
        child.wait()
    assert not portable.pid_alive(child.pid)


def test_wait_readable_waits_for_data_and_times_out():
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(0.5); "
                              "sys.stdout.write('x'); sys.stdout.flush(); time.sleep(30)"],
                             stdout=subprocess.PIPE)
    try:
        started = time.monotonic()
        assert not portable.wait_readable(child.stdout, 0.1)
        assert time.monotonic() - started >= 0.1
        assert portable.wait_readable(child.stdout, 10)
        assert child.stdout.read(1) == b"x"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_lock_file_excludes_a_second_holder(tmp_path):
    path = tmp_path / "lock"
    order = []
    with open(path, "w") as first:
        portable.lock_file(first)

        def second_holder() -> None:
            with open(path, "w") as second:
                portable.lock_file(second)
                order.append("second")
                portable.unlock_file(second)

        thread = threading.Thread(target=second_holder)
        thread.start()
        time.sleep(0.3)
        order.append("first")
        portable.unlock_file(first)
        thread.join(10)
    assert order == ["first", "second"]


def test_stop_group_stops_a_detached_process_and_its_children():
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                               "print(c.pid, flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, **portable.detached())
    try:
        grandchild = int(leader.stdout.readline())
        portable.stop_group(leader.pid)
        leader.wait(10)
        deadline = time.monotonic() + 10
        while portable.pid_alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not portable.pid_alive(grandchild), "the group's other process survived"
    finally:
        portable.stop_group(leader.pid, force=True)
        leader.wait()
        leader.stdout.close()


def test_no_posix_only_call_outside_the_portable_module():
    """The learner's paths reach the OS only through ecomlib.portable (or guard the call)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    posix_only = re.compile(r"^\s*import (fcntl|resource|select)\b|os\.killpg|os\.setsid|os\.fork\b|"
                            r"start_new_session|[\"']/proc/|[\"']/tmp\b|set_start_method\([\"']fork",
                            re.MULTILINE)
    for path in sorted((repo / "ecomlib").rglob("*.py")):
        if path.name == "portable.py":
            continue
        found = posix_only.findall(path.read_text())
        assert not found, f"{path.relative_to(repo)}: {found}"
