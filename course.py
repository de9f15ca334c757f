#!/usr/bin/env python3
"""The course's commands. Each sets up what it needs first (everything goes into ./.venv):

  setup [--offline DIR]        create/refresh .venv with what a learner needs (requirements.txt)
  demo [--rows N] [--dataset PATH]   run every pipeline on the embedded AWS
  lab [--answer-key]           open your student copies (student/) in JupyterLab, written on the
                               first run and never overwritten; --answer-key: notebooks/ with solutions
  student [DIR]                write the student copies (existing files are kept)
  doctor                       check this machine: Python, disk, ports, the embedded AWS, a pipeline
  test [pytest args]           install the developer tools too; unit tests + every notebook (nbval),
                               on every core (-n 0: in this process only)
  wheels DIR [--dev] [pip download args]   fill DIR with every wheel, for `setup --offline DIR`
  local|bench|teardown ...     python -m ecomlib local|bench|teardown ...

Linux/macOS: ./course COMMAND    Windows: py course.py COMMAND    (any OS: python3 course.py COMMAND)
Needs Python 3.11+ with venv. Offline: --offline DIR, or ECOM_WHEELS=DIR, installs from a wheel
folder with no network (make it with `wheels DIR` on a machine of the same OS and Python).
"""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
MIN_PYTHON = (3, 11)
WINDOWS = os.name == "nt"
LEARNER = "requirements.txt"
DEV = "requirements-dev.txt"
# What `pip install -e .` needs to build ecomlib with no network (pyproject's build-system).
BUILD = ["setuptools>=68"]
PIP = ["-m", "pip", "--disable-pip-version-check"]


def venv_dir():
    return Path(os.environ.get("ECOM_VENV") or REPO / ".venv")


def venv_python(venv=None):
    venv = venv or venv_dir()
    if WINDOWS:
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def fail(message, code=2):
    print(message, file=sys.stderr)
    sys.exit(code)


def check_python():
    if sys.version_info[:2] < MIN_PYTHON:
        fail("This course needs Python 3.11 or newer (this is Python %s at %s).\n"
             "Install Python 3.11+ and run it with that one: PYTHON=python3.11 ./course ... "
             "(Windows: py -3.11 course.py ...)." % (sys.version.split()[0], sys.executable))


def run(args, **kwargs):
    print("+ " + " ".join(str(a) for a in args), file=sys.stderr)
    result = subprocess.run([str(a) for a in args], cwd=str(REPO), **kwargs)
    if result.returncode:
        fail("command failed (exit %d): %s" % (result.returncode, " ".join(str(a) for a in args)),
             result.returncode)


def install_commands(python, requirements, wheels=None):
    """The pip commands that install ``requirements`` and ecomlib (editable) into ``python``'s
    environment; with ``wheels``, from that folder only (no index, no network)."""
    source = ["--no-index", "--find-links", str(Path(wheels).resolve())] if wheels else []
    return [
        [python, *PIP, "install", "--quiet", *source, "-r", requirements],
        [python, *PIP, "install", "--quiet", *source, "--no-deps", "-e", "."],
    ]


def download_commands(python, folder, dev=False, extra=()):
    """The pip command that fills ``folder`` with every wheel ``setup`` (or, with ``dev``,
    ``test``) installs, plus the build requirement of ecomlib itself."""
    requirements = DEV if dev else LEARNER
    return [[python, *PIP, "download", "--quiet", "-d", str(Path(folder).resolve()),
             "-r", requirements, *BUILD, *extra]]


def stamp_name(requirements):
    """A file in the venv saying which requirements (and which versions of them) it holds."""
    digest = hashlib.sha256()
    for name in (LEARNER, requirements, "pyproject.toml"):
        digest.update((REPO / name).read_bytes())
    return ".installed-%s-%s" % ("dev" if requirements == DEV else "learner", digest.hexdigest()[:16])


def setup(requirements=LEARNER, wheels=None):
    """Create the venv if needed and install ``requirements`` unless they already are there."""
    check_python()
    venv = venv_dir()
    python = venv_python(venv)
    installed = {stamp_name(LEARNER), stamp_name(DEV)} if requirements == LEARNER else {stamp_name(DEV)}
    if python.exists() and any((venv / name).exists() for name in installed):
        return python
    wheels = wheels or os.environ.get("ECOM_WHEELS") or None
    if wheels and not Path(wheels).is_dir():
        fail("No wheel folder at %s: give the folder `wheels DIR` filled (a USB stick, a share)." % wheels)
    if not python.exists():
        print("Creating %s ..." % venv, file=sys.stderr)
        run([sys.executable, "-m", "venv", venv])
    print("Installing %s into %s%s (first run: a minute or two)..."
          % (requirements, venv, " from %s, no network" % wheels if wheels else ""), file=sys.stderr)
    for command in install_commands(python, requirements, wheels):
        run(command)
    for old in venv.glob(".installed-*"):
        old.unlink()
    (venv / stamp_name(requirements)).touch()
    return python


def execute(args):
    """Run ``args`` (in the repository) and exit with its code."""
    args = [str(a) for a in args]
    if WINDOWS:  # no exec on Windows that keeps the console: wait and pass the code on
        sys.exit(subprocess.run(args, cwd=str(REPO)).returncode)
    os.chdir(str(REPO))
    os.execv(args[0], args)


def test_workers(args):
    """pytest-xdist options: a worker per core (at most 4), each with its own embedded AWS, a
    file's tests together on one worker (see conftest.py); none when ``args`` choose (-n, -p no:xdist)."""
    chosen = any(re.fullmatch(r"-n(=?\w+)?|--numprocesses(=\w+)?|no:xdist", a) for a in args)
    workers = min(os.cpu_count() or 1, 4)
    return [] if chosen or workers < 2 else ["-n", str(workers), "--dist", "loadgroup"]


def option(args, name):
    """Remove ``name VALUE`` from ``args``; returns VALUE (or None)."""
    if name in args:
        at = args.index(name)
        if at + 1 >= len(args):
            fail("%s needs a value" % name)
        value = args[at + 1]
        del args[at:at + 2]
        return value
    return None


def main(argv):
    command, args = (argv[0], list(argv[1:])) if argv else ("help", [])
    if command == "setup":
        setup(wheels=option(args, "--offline"))
    elif command == "demo":
        execute([setup(), "-m", "ecomlib", "demo", *args])
    elif command == "lab":
        python = setup()
        if "--answer-key" in args:
            args.remove("--answer-key")
            execute([python, "-m", "jupyterlab", "notebooks", *args])
        # The learner's copies: written on the first run, never overwritten afterwards.
        run([python, "-m", "ecomlib", "edition", "student", "student"], stdout=subprocess.DEVNULL)
        execute([python, "-m", "jupyterlab", "student", *args])
    elif command == "student":
        execute([setup(), "-m", "ecomlib", "edition", "student", *args])
    elif command == "test":
        execute([setup(DEV), "-m", "pytest", "--nbval", *test_workers(args), *args])
    elif command in ("local", "bench", "teardown"):
        execute([setup(), "-m", "ecomlib", command, *args])
    elif command == "doctor":
        check_python()
        try:
            python = setup()
        except SystemExit:
            sys.path.insert(0, str(REPO))
            from ecomlib import doctor

            setup_failed = doctor.Check(
                "setup", "FAIL", "the course's environment could not be installed (the error is above)",
                "check the network and run `./course setup` again, or install from the instructor's wheel "
                "folder: `./course setup --offline DIR`; the checks below need nothing installed")
            doctor.run(aws=False, packages=False, before=(setup_failed,))
            sys.exit(1)
        execute([python, "-m", "ecomlib", "doctor", *args])
    elif command == "wheels":
        if not args or args[0].startswith("-"):
            fail("usage: wheels DIR [--dev] [pip download options, e.g. --platform win_amd64 "
                 "--python-version 3.11 --only-binary=:all:]")
        folder, extra = args[0], args[1:]
        dev = "--dev" in extra
        extra = [a for a in extra if a != "--dev"]
        check_python()
        python = venv_python()
        if not python.exists():
            run([sys.executable, "-m", "venv", venv_dir()])
        Path(folder).mkdir(parents=True, exist_ok=True)
        for command in download_commands(python, folder, dev, extra):
            run(command)
        print("Wheels for %s are in %s. On each laptop: ./course setup --offline %s "
              "(Windows: py course.py setup --offline %s)" % (DEV if dev else LEARNER, folder, folder, folder))
    else:
        print(__doc__.strip())
        sys.exit(0 if command in ("help", "-h", "--help") else 2)


if __name__ == "__main__":
    main(sys.argv[1:])
