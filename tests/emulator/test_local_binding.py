"""The embedded AWS listens on 127.0.0.1 only: nothing of a learner's is reachable from the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ecomlib import aws, pipelines
from ecomlib.local import server


def listening_addresses(pid: int) -> list[str]:
    """host:port of every TCP socket the process listens on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.append(f"{address}:{int(port, 16)}")
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_every_listening_socket_is_on_loopback():
    aws.endpoint_url()
    pipelines.teardown_all()
    pipelines.deploy_all()  # the API front opens a port per stage
    try:
        pid = server._running_state()["pid"]
        addresses = listening_addresses(pid)
        assert len(addresses) >= 2, addresses  # the AWS endpoint and the API stage
        loopback = {"0100007F"}  # 127.0.0.1, as /proc writes it
        assert all(a.split(":")[0] in loopback for a in addresses), addresses
    finally:
        pipelines.teardown_all()
