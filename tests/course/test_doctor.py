"""``course doctor``: every check passes here, and each failure prints its fix and fails the run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from ecomlib import doctor
from ecomlib.local import server

REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    return env


@pytest.mark.slow
def test_doctor_passes_and_leaves_nothing_behind(tmp_path):
    learner_home = tmp_path / "learner-home"  # the learner's ECOM_HOME: never touched
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run([sys.executable, "-m", "ecomlib", "doctor"], cwd=REPO, capture_output=True, text=True,
                            env=_env(ECOM_HOME=str(learner_home), TMPDIR=str(scratch)), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("python", "disk", "loopback", "packages", "embedded AWS", "tiny pipeline"):
        assert any(line.startswith("[  ok] " + name + ":") for line in lines), (name, result.stdout)
    assert "put a record into a Kinesis stream and it was read back" in result.stdout
    assert lines[-1] == "doctor: ready for the course"
    assert not learner_home.exists(), "the doctor wrote into the learner's ECOM_HOME"
    assert list(scratch.iterdir()) == [], "the doctor left its private embedded AWS's files behind"


def test_a_port_in_use_fails_with_its_fix(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        checks = {c.name: c for c in doctor.check_ports(local_port=port, jupyter_port=port)}
        assert checks["ECOM_LOCAL_PORT"].failed
        assert "unset ECOM_LOCAL_PORT" in checks["ECOM_LOCAL_PORT"].fix
        assert checks["jupyter port"].status == "warn"  # JupyterLab moves to the next port by itself
        assert checks["loopback"].status == "ok"
        # The command line: one line per check, the fix under the failure, exit code 1.
        result = subprocess.run([sys.executable, "-m", "ecomlib", "doctor", "--no-aws"], cwd=REPO,
                                capture_output=True, text=True, timeout=120,
                                env=_env(ECOM_LOCAL_PORT=str(port), ECOM_HOME=str(tmp_path)))
    assert result.returncode == 1, result.stdout
    assert f"[FAIL] ECOM_LOCAL_PORT: port {port} on 127.0.0.1 is in use" in result.stdout
    assert "       fix: unset ECOM_LOCAL_PORT" in result.stdout
    assert result.stdout.splitlines()[-1] == "doctor: 1 problem(s): ECOM_LOCAL_PORT"


def test_a_free_port_passes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    checks = {c.name: c for c in doctor.check_ports(local_port=port, jupyter_port=port)}
    assert checks["ECOM_LOCAL_PORT"].status == "ok"
    assert checks["jupyter port"].status == "ok"


def test_too_little_disk_fails_with_its_fix(monkeypatch, tmp_path):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: Usage(10**10, 10**10 - 200 * 10**6, 200 * 10**6))
    check = doctor.check_disk([tmp_path / "not-yet" / "made"])
    assert check.failed
    assert "200 MB free" in check.detail
    assert "ECOM_HOME" in check.fix
    assert not doctor.check_disk([tmp_path], need_mb=100).failed


def test_an_old_python_fails_with_its_fix():
    check = doctor.check_python((3, 10, 12))
    assert check.failed and "3.10.12" in check.detail and "Python 3.11+" in check.fix
    assert not doctor.check_python((3, 11, 0)).failed


def test_a_missing_package_fails_with_its_fix():
    check = doctor.check_packages(["json", "ecomlib_no_such_module"])
    assert check.failed and check.detail == "not installed: ecomlib_no_such_module"
    assert "./course setup" in check.fix
    assert not doctor.check_packages(["json"]).failed


def test_an_embedded_aws_that_cannot_start_fails_with_its_fix(monkeypatch):
    home_before = os.environ.get("ECOM_HOME")

    def cannot_start(timeout: float = 60) -> str:
        assert os.environ["ECOM_HOME"] != home_before  # a private one, not the learner's
        assert os.environ["ECOM_PREFIX"] == "ecom-doctor"
        raise server.LocalAWSError("simulated: it exited at start")

    monkeypatch.setattr(server, "start", cannot_start)
    checks = doctor.check_embedded_aws()
    assert [c.status for c in checks] == ["FAIL", "skip"]
    assert "simulated: it exited at start" in checks[0].detail and "python -m ecomlib.local" in checks[0].fix
    assert os.environ.get("ECOM_HOME") == home_before  # the settings are given back
    assert os.environ["ECOM_PREFIX"] == "ecom"


def test_a_real_account_target_creates_nothing(monkeypatch):
    monkeypatch.setenv("ECOM_TARGET", "aws")
    monkeypatch.setattr(server, "start", lambda timeout=60: pytest.fail("the doctor started something"))
    assert [c.status for c in doctor.check_embedded_aws()] == ["skip", "skip"]
