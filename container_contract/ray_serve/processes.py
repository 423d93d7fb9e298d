"""The container's processes seen from outside: Ray's processes below it, its Serve replicas, and
the leftovers of one killed outright (its temp dir names them)."""

from __future__ import annotations

import os
from pathlib import Path

# ($TMPDIR can be long). mkdtemp makes each dir private to its user.
TEMP_ROOT = "/tmp"  # noqa: S108


def temp_dir_prefix(pid: int) -> str:
    """The temp dir of the container whose process is ``pid`` starts with this."""
    return f"{TEMP_ROOT}/ray-{pid}-"


def kill_leftovers(pid: int) -> int:
    """SIGKILL every process whose command line names the temp dir of container ``pid``, then
    remove that dir (a container killed outright cannot remove it itself)."""
    import glob
    import shutil
    import signal

    needle = temp_dir_prefix(pid).encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except OSError:
            continue
    if pid != os.getpid():
        for folder in glob.glob(temp_dir_prefix(pid) + "*"):
            shutil.rmtree(folder, ignore_errors=True)
    return killed


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of a process group (Ray's agents outlive a killed driver)."""
    import contextlib
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def descendants(root: int) -> dict[int, str]:
    """``{pid: command line}`` of every process below ``root`` (Ray's processes, HAProxy)."""
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        names[pid] = cmd.strip() or stat.split("(", 1)[1].split(")", 1)[0]
    found: set[int] = set()
    frontier = [root]
    while frontier:
        current = frontier.pop()
        for pid, ppid in parent.items():
            if ppid == current and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return {pid: names[pid] for pid in found if pid in names}


def replica_pids(root: int) -> list[int]:
    """The Serve replicas (``ray::ServeReplica:...``) of the container whose process is ``root``."""
    return sorted(pid for pid, cmd in descendants(root).items() if "ServeReplica" in cmd)
