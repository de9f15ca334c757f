"""The launcher (course.py, and ./course which runs it): commands, the offline install, the
no-install paths (dev container, Binder) and CI all use the same setup."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("setup", "demo", "lab", "doctor", "test", "wheels")


def _launcher():
    spec = importlib.util.spec_from_file_location("course_launcher", REPO / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("entry", [["./course"], [sys.executable, "course.py"]])
def test_help_lists_every_command_from_both_entry_points(entry):
    result = subprocess.run([*entry, "help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert f"\n  {command}" in result.stdout, command
    unknown = subprocess.run([*entry, "no-such-command"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2


def test_the_bash_script_only_hands_over_to_course_py():
    lines = [line for line in (REPO / "course").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == 'exec "$PYTHON" course.py "$@"'
    assert not any("-m pip" in line or "-m venv" in line or "requirements" in line for line in lines), \
        "the logic belongs in course.py"


def test_the_venv_python_on_each_os(monkeypatch, tmp_path):
    course = _launcher()
    monkeypatch.setenv("ECOM_VENV", str(tmp_path / "v"))
    monkeypatch.setattr(course, "WINDOWS", False)
    assert course.venv_python() == tmp_path / "v" / "bin" / "python"
    monkeypatch.setattr(course, "WINDOWS", True)
    assert course.venv_python() == tmp_path / "v" / "Scripts" / "python.exe"


def test_setup_installs_the_learner_set_and_test_the_developer_set_offline_when_asked(monkeypatch, tmp_path):
    course = _launcher()
    venv = tmp_path / "venv"
    monkeypatch.setenv("ECOM_VENV", str(venv))
    monkeypatch.setenv("ECOM_WHEELS", str(tmp_path / "wheels"))
    (tmp_path / "wheels").mkdir()
    ran = []

    def fake_run(args):  # record the commands; make the venv's python exist as `venv` would
        ran.append([str(a) for a in args])
        if args[1:3] == ["-m", "venv"]:
            course.venv_python().parent.mkdir(parents=True)
            course.venv_python().touch()

    monkeypatch.setattr(course, "run", fake_run)
    course.setup()
    python = str(course.venv_python())
    wheels = str((tmp_path / "wheels").resolve())
    assert ran == [
        [sys.executable, "-m", "venv", str(venv)],
        [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", "--no-index", "--find-links",
         wheels, "-r", "requirements.txt"],
        [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", "--no-index", "--find-links",
         wheels, "--no-deps", "-e", "."],
    ]
    ran.clear()
    course.setup()  # installed already: nothing to do
    assert ran == []
    course.setup(course.DEV)  # `test` wants the developer tools too
    assert [c[-1] for c in ran] == ["requirements-dev.txt", "."]
    ran.clear()
    course.setup()  # the developer set contains the learner's
    assert ran == []
    monkeypatch.delenv("ECOM_WHEELS")
    assert "--no-index" not in course.install_commands("py", "requirements.txt")[0]


def test_wheels_downloads_every_requirement_and_the_build_backend():
    course = _launcher()
    [command] = course.download_commands("py", "stick", extra=["--platform", "win_amd64"])
    assert command[:5] == ["py", "-m", "pip", "--disable-pip-version-check", "download"]
    assert command[command.index("-r") + 1] == "requirements.txt"
    assert "setuptools>=68" in command and command[-2:] == ["--platform", "win_amd64"]
    [dev] = course.download_commands("py", "stick", dev=True)
    assert dev[dev.index("-r") + 1] == "requirements-dev.txt"
    build = (REPO / "pyproject.toml").read_text()
    assert 'requires = ["setuptools>=68"]' in build, "BUILD in course.py must follow pyproject's build-system"


@pytest.mark.slow
def test_a_real_offline_install_from_a_wheel_folder(tmp_path):
    """`wheels DIR` fills a folder from the index; `setup --offline DIR` then installs from it
    with the index switched off and any network access pointed at a dead proxy. (A copy of
    the course with a one-package requirements file: the full learner set is the same
    command, measured by hand; see the README.)"""
    course_copy = tmp_path / "course"
    (course_copy / "ecomlib").mkdir(parents=True)
    for name in ("course.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, course_copy / name)
    shutil.copy(REPO / "ecomlib" / "__init__.py", course_copy / "ecomlib" / "__init__.py")
    pin = next(line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("tqdm=="))
    (course_copy / "requirements.txt").write_text(pin + "\n")
    (course_copy / "requirements-dev.txt").write_text("-r requirements.txt\n")
    wheels = tmp_path / "wheels"
    env = {**os.environ, "ECOM_VENV": sys.prefix}  # download with this test's pip (saves making a venv)
    download = subprocess.run([sys.executable, "course.py", "wheels", str(wheels)], cwd=course_copy,
                              capture_output=True, text=True, env=env, timeout=600)
    unreachable = ("Max retries exceeded", "NewConnectionError", "Temporary failure in name resolution",
                   "Network is unreachable")
    if download.returncode and any(reason in download.stderr for reason in unreachable):
        pytest.skip(f"no package index reachable here to fill the wheel folder: {download.stderr[-300:]}")
    assert download.returncode == 0, download.stderr
    names = sorted(p.name for p in wheels.iterdir())
    assert any(n.startswith("tqdm-") for n in names) and any(n.startswith("setuptools-") for n in names), names

    offline = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    offline.update(PIP_CONFIG_FILE=os.devnull, ECOM_VENV=str(tmp_path / "venv"), PYTHONPATH="",
                   HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
                   https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
    install = subprocess.run([sys.executable, "course.py", "setup", "--offline", str(wheels)], cwd=course_copy,
                             capture_output=True, text=True, env=offline, timeout=600)
    assert install.returncode == 0, install.stderr
    assert "--no-index" in install.stderr
    python = tmp_path / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    check = subprocess.run([str(python), "-c", "import ecomlib, tqdm; print(tqdm.__version__, ecomlib.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, env=offline, timeout=60)
    assert check.returncode == 0, check.stderr
    version, where = check.stdout.split()
    assert version == pin.split("==")[1]
    assert Path(where).parent == course_copy / "ecomlib"  # installed editable, from the copy


def test_the_dev_container_runs_the_same_setup_and_opens_jupyterlab():
    config = json.loads((REPO / ".devcontainer" / "devcontainer.json").read_text())
    assert "python:1-3.11" in config["image"]
    assert config["postCreateCommand"].startswith("./course setup")
    assert 8888 in config["forwardPorts"]
    assert config["postAttachCommand"]["lab"].startswith("./course lab") and "--port=8888" in config["postAttachCommand"]["lab"]
    assert any(name.startswith("notebooks/") for name in config["customizations"]["codespaces"]["openFiles"])
    for name in config["customizations"]["codespaces"]["openFiles"]:
        assert (REPO / name).exists(), name


def test_binder_runs_the_same_setup_on_the_same_python():
    post_build = REPO / "binder" / "postBuild"
    assert post_build.stat().st_mode & stat.S_IXUSR, "postBuild must be executable"
    commands = [line for line in post_build.read_text().splitlines() if line and not line.startswith(("#", "set "))]
    assert commands[0] == "./course setup"
    assert "--name python3" in commands[1]  # the kernel the notebooks ask for
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    assert "- python=3.11" in (REPO / "environment.yml").read_text()
    syntax = subprocess.run(["bash", "-n", str(post_build)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_ci_runs_the_readme_test_command():
    assert "./course test -p no:cacheprovider" in (REPO / ".ci" / "run").read_text()


def test_doctor_reports_a_failed_setup_and_what_it_could_still_check(tmp_path):
    env = {**os.environ, "ECOM_VENV": str(tmp_path / "venv"), "ECOM_WHEELS": str(tmp_path / "no-such-folder")}
    result = subprocess.run([sys.executable, "course.py", "doctor"], cwd=REPO, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 1
    assert "No wheel folder at" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[FAIL] setup: ") and lines[1].startswith("       fix: ")
    assert any(line.startswith("[  ok] python:") for line in lines)
    assert lines[-1] == "doctor: 1 problem(s): setup"
    assert not (tmp_path / "venv").exists(), "nothing is created before the wheel folder is found"


def test_test_runs_a_worker_per_core_unless_told_otherwise(monkeypatch):
    """`./course test` spreads the tests over the cores (at most 4 workers), a file's tests
    together (conftest.py's groups); -n or -p no:xdist in the arguments decide instead."""
    course = _launcher()
    monkeypatch.setattr(course.os, "cpu_count", lambda: 2)
    assert course.test_workers([]) == ["-n", "2", "--dist", "loadgroup"]
    assert course.test_workers(["-m", "not slow", "tests/unit"]) == ["-n", "2", "--dist", "loadgroup"]
    for chosen in (["-n", "0"], ["-n0"], ["--numprocesses=3"], ["-p", "no:xdist"]):
        assert course.test_workers(chosen) == [], chosen
    monkeypatch.setattr(course.os, "cpu_count", lambda: 16)
    assert course.test_workers([])[:2] == ["-n", "4"]
    monkeypatch.setattr(course.os, "cpu_count", lambda: 1)
    assert course.test_workers([]) == []
