"""What every part of the embedded AWS shares: one small lifecycle, as moto's backends do.

A component is an object that owns its state (nothing of it lives in module globals).
The server (``ecomlib.local.server``) makes one of each, in start order, and loops over
them for every lifecycle step:

=================  =====================================================================
``start(url)``     begin work (threads, servers); ``url`` is the embedded AWS's endpoint
``stop()``         end that work for good (the process is stopping)
``before_reset()`` stop work that would touch moto's state while moto forgets it
``reset()``        forget everything, after moto has forgotten its resources
``status()``       what ``GET /_ecomlib/status`` shows of it (a dict merged into the answer)
``drain()``        finish pending background work now (``POST /_ecomlib/drain``)
``routes()``       its control routes, ``POST /_ecomlib/<name>``: name -> handler(body);
                   several components may answer one route (``faults/crash``): a handler
                   returns None when the request is not for it
=================  =====================================================================

:class:`Worker` is the background loop that several components run: a thread doing one
round every ``interval`` seconds, under the component's lock, until stopped.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

Route = Callable[[dict], "dict | None"]

# Held while moto's state is read or changed: by each AWS request (the server's Serialised)
# and by the components when they touch moto's backends directly, inside the server process.
# Here, below every component and the server, so that none of them imports the server.
MOTO_LOCK = threading.RLock()


class Component:
    """Base of the embedded AWS's parts: every hook does nothing unless overridden."""

    name = "component"

    def start(self, endpoint: str) -> None:  # noqa: ARG002
        return None

    def stop(self) -> None:
        return None

    def before_reset(self) -> None:
        return None

    def reset(self) -> None:
        return None

    def status(self) -> dict:
        return {}

    def drain(self) -> dict:
        return {}

    def routes(self) -> dict[str, Route]:
        return {}


class Worker:
    """A background loop: ``round()`` every ``interval`` seconds while running.

    Rounds hold ``lock``, so a drain or a control route that takes the same lock runs
    between two rounds, never in the middle of one. Each start gets its own stop signal:
    a loop stopped and started again at once never leaves two threads running.
    """

    def __init__(self, name: str, interval: float, round: Callable[[], object],  # noqa: A002
                 lock: threading.RLock | None = None) -> None:
        self.name = name
        self.interval = interval
        self.round = round
        self.lock = lock if lock is not None else threading.RLock()
        self._stopped = threading.Event()
        self._stopped.set()
        self._log = logging.getLogger(f"ecomlib.{name}")

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    def start(self) -> None:
        with self.lock:  # a stopped loop has finished its round
            if self.running:
                return
            stopped = self._stopped = threading.Event()
            threading.Thread(target=self._loop, args=(stopped,), name=self.name, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self, stopped: threading.Event) -> None:
        while not stopped.wait(self.interval):
            try:
                with self.lock:
                    if stopped.is_set():
                        return
                    self.round()
            except Exception:  # noqa: BLE001  (keep going; the log says what broke)
                self._log.exception("%s: a round failed", self.name)


class WorkerComponent(Component):
    """A component whose work is one background :class:`Worker`, ``self._worker``: it
    starts and stops with the component."""

    _worker: Worker

    def start(self, endpoint: str) -> None:  # noqa: ARG002
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()
