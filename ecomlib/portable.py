"""The few operating-system calls that differ between Linux/macOS and Windows, in one place.

The embedded AWS is a background process with worker processes of its own; starting,
finding, locking and stopping them uses POSIX calls (process groups, ``fcntl``, ``select``
on pipes, ``resource``) that Windows does not have. Each function here does the POSIX thing
and has a Windows branch. Verified on Linux; the Windows branches are written to the
documented Windows APIs but have not been run on Windows by the course's CI.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

WINDOWS = os.name == "nt"


def lock_file(fh: IO) -> None:
    """Block until this process holds an exclusive lock on the open file ``fh``."""
    if WINDOWS:
        import msvcrt

        while True:
            try:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)  # retries for ~10 s, then raises
                return
            except OSError:
                continue
    import fcntl

    fcntl.flock(fh, fcntl.LOCK_EX)


def unlock_file(fh: IO) -> None:
    if WINDOWS:
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fh, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    """Is process ``pid`` running (a zombie is not)? (On Windows ``os.kill(pid, 0)`` would
    send Ctrl-C, so it asks the process table instead.)"""
    if WINDOWS:
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:  # Linux: a zombie is state Z (macOS has no /proc)
            return not stat.read().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def detached() -> dict[str, Any]:
    """``subprocess.Popen`` arguments for a background process that outlives its starter and
    leads its own process group (so :func:`stop_group` reaches the workers it starts)."""
    if WINDOWS:
        import subprocess

        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def stop_group(pid: int, force: bool = False) -> None:
    """Ask the process group led by ``pid`` to stop (SIGTERM), or kill it (``force``).
    Windows has no SIGTERM for another process: the process tree is ended with taskkill."""
    if WINDOWS:
        import subprocess

        # /F: a console program ignores taskkill's polite close, so the tree is always ended.
        subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True)
        return
    import signal

    try:
        os.killpg(pid, signal.SIGKILL if force else signal.SIGTERM)
    except ProcessLookupError:
        pass


def wait_readable(stream: IO, timeout: float) -> bool:
    """Wait until the pipe ``stream`` has data (or end of file) to read; False on timeout.
    (``select`` takes only sockets on Windows: there the pipe is peeked at until the deadline.)"""
    if WINDOWS:
        import ctypes
        import msvcrt

        handle = msvcrt.get_osfhandle(stream.fileno())
        available = ctypes.c_ulong()
        deadline = time.monotonic() + timeout
        while True:
            ok = ctypes.windll.kernel32.PeekNamedPipe(  # type: ignore[attr-defined]
                handle, None, 0, None, ctypes.byref(available), None)
            if not ok or available.value:  # not ok: the writer closed the pipe (end of file)
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    return bool(ready)


def child_env() -> dict[str, str]:
    """What a child process with an otherwise private environment still needs from the OS
    (on Windows, Python cannot start without SYSTEMROOT)."""
    if WINDOWS:
        keep = ("SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "TEMP", "TMP", "COMSPEC", "PATHEXT")
        return {name: os.environ[name] for name in keep if name in os.environ}
    return {}


def max_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its finished children), in MB; 0 where
    the ``resource`` module does not exist (Windows)."""
    try:
        import resource
    except ImportError:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF).ru_maxrss
    return usage / (1024 * 1024) if sys.platform == "darwin" else usage / 1024  # bytes on macOS, KB on Linux
