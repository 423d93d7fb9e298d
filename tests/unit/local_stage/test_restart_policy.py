"""The supervisor replaces a process that had been running at once, and backs off one that
keeps exiting right after its start."""

from __future__ import annotations

import asyncio
import sys

from local_stage.procs import (
    FIRST_RESTART_DELAY_S,
    MAX_RESTART_DELAY_S,
    Child,
    Supervisor,
    restart_delay_s,
)


def test_the_delay_doubles_only_for_exits_in_a_row_soon_after_a_start():
    delays = [restart_delay_s(n) for n in range(1, 12)]
    assert delays[0] == FIRST_RESTART_DELAY_S  # a healthy process that died: replaced at once
    assert delays[1:5] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == MAX_RESTART_DELAY_S
    assert delays == sorted(delays)


def test_a_crash_loop_is_backed_off_and_counted(tmp_path):
    child = Child(
        name="crasher",
        argv=[sys.executable, "-c", "import sys; sys.exit(3)"],
        env={},
        port=0,
        restart=True,
    )

    async def main() -> tuple[int, int]:
        supervisor = Supervisor(tmp_path / "state.json", color=False)
        supervisor.children.append(child)
        await supervisor.start(child)
        await asyncio.sleep(2.0)  # exits at ~0 s, then restarts after 0.05, 0.5 and 1 s
        supervisor.stopping = True
        if child.proc is not None and child.proc.returncode is None:
            child.proc.kill()
        return child.restarts, child.quick_exits

    restarts, quick_exits = asyncio.run(main())
    # Without the back-off it would have restarted dozens of times in 2 s.
    assert 2 <= restarts <= 4 and quick_exits == restarts
