"""Ports for processes that bind them late, claimed so that nothing else on the machine takes them.

A port picked by binding to port 0 and closing the socket is free at that moment only. A Ray
Serve container binds its ports seconds later (HAProxy's listeners, the replicas' direct ingress,
Serve's HTTP port), and meanwhile Ray itself binds ephemeral ports and its dashboard agent's
fixed 52365, and a second container picks its own: two of them can end up on one port, and
HAProxy then exits at start-up ("cannot bind socket (Address already in use)").

So a container claims a block of ports for its whole life instead: blocks lie in
``[BLOCKS_LOW, BLOCKS_HIGH)``, below Linux's ephemeral range (32768+) and Ray's own ranges, so the
kernel never hands them out for port 0; a block is claimed by holding an exclusive ``flock`` on
its lock file (the kernel drops it when the process ends, however it ends), and only when every
port in it can be bound right now (a leftover from a killed container, another user's process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from container_contract.errors import ContainerError

BLOCK_SIZE = 100
BLOCKS_LOW, BLOCKS_HIGH = 10000, 28000  # Ray's own: 10001 (client), 30000-31000, 40000-41000
# Ports Ray binds whatever it is told (its dashboard agent's HTTP server) or by default: never
# handed out by free_port() either, since a Ray cluster may take them at any time.
RAY_DEFAULT_PORTS = frozenset({6379, 8076, 8265, 10001, 52365})
LOCK_ROOT = "/tmp"  # noqa: S108 (the lock files hold nothing; the dir is private to this user)


def lock_dir() -> Path:
    folder = Path(LOCK_ROOT) / f"mlserving-ports-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def bindable(port: int) -> bool:
    """Nothing on this machine listens on ``port``, on any address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, from the kernel's ephemeral range: for a process that binds it at once."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in RAY_DEFAULT_PORTS:
            return port


@dataclass
class PortBlock:
    """``size`` consecutive ports from ``base``, this process's while it holds ``fd``'s lock."""

    base: int
    size: int
    fd: int

    def port(self, offset: int) -> int:
        if not 0 <= offset < self.size:
            raise IndexError(f"offset {offset} is outside a block of {self.size} ports")
        return self.base + offset

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = -1


def claim_block() -> PortBlock:
    """Claim a free block of BLOCK_SIZE ports for the life of this process (or until released)."""
    folder = lock_dir()
    count = (BLOCKS_HIGH - BLOCKS_LOW) // BLOCK_SIZE
    start = secrets.randbelow(count)  # spreads claims out; the lock makes them safe
    for i in range(count):
        base = BLOCKS_LOW + BLOCK_SIZE * ((start + i) % count)
        fd = os.open(folder / f"{base}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # another live process holds it
        if all(bindable(p) for p in range(base, base + BLOCK_SIZE)):
            return PortBlock(base, BLOCK_SIZE, fd)
        with contextlib.suppress(OSError):
            os.close(fd)
    raise ContainerError(
        f"no free block of {BLOCK_SIZE} ports in {BLOCKS_LOW}-{BLOCKS_HIGH} on this machine: "
        "stop the local stages still running here and try again"
    )


class PortPool:
    """Ports handed out one after another from blocks this process claims as it needs them.

    For a process that starts children which bind their ports late (the supervisor's instances
    and runtime API, a test's local stage): the blocks stay claimed for the process's life.
    """

    def __init__(self) -> None:
        self._blocks: list[PortBlock] = []
        self._next = BLOCK_SIZE

    def take(self, count: int = 1) -> list[int]:
        """``count`` consecutive ports (at most a block's worth)."""
        if not 1 <= count <= BLOCK_SIZE:
            raise ValueError(f"a pool hands out 1 to {BLOCK_SIZE} ports at a time, not {count}")
        if self._next + count > BLOCK_SIZE:
            self._blocks.append(claim_block())
            self._next = 0
        block = self._blocks[-1]
        ports = [block.port(self._next + i) for i in range(count)]
        self._next += count
        return ports
