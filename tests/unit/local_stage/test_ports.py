"""Ports claimed for processes that bind them late: no two claimants, and nothing else, share one."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from container_contract import ports
from container_contract.errors import ContainerError


@pytest.fixture
def few_blocks(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """Three blocks only, with lock files of their own, so a test can use them all up."""
    monkeypatch.setattr(ports, "LOCK_ROOT", str(tmp_path))
    base = ports.BLOCKS_LOW + 50 * ports.BLOCK_SIZE  # away from the blocks other tests claim
    monkeypatch.setattr(ports, "BLOCKS_LOW", base)
    monkeypatch.setattr(ports, "BLOCKS_HIGH", base + 3 * ports.BLOCK_SIZE)
    return base


def _holder(lock_root, base: int) -> subprocess.Popen[str]:
    """Another process that claims a block and keeps it until killed."""
    code = textwrap.dedent(
        f"""
        from container_contract import ports
        ports.LOCK_ROOT = {str(lock_root)!r}
        ports.BLOCKS_LOW, ports.BLOCKS_HIGH = {base}, {base + ports.BLOCK_SIZE}
        block = ports.claim_block()
        print(block.base, flush=True)
        input()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert int(proc.stdout.readline()) == base
    return proc


def test_blocks_claimed_in_one_process_are_disjoint_and_below_the_ephemeral_range(few_blocks):
    claimed = [ports.claim_block() for _ in range(3)]

    assert sorted(b.base for b in claimed) == [few_blocks + i * ports.BLOCK_SIZE for i in range(3)]
    every = [b.port(i) for b in claimed for i in range(b.size)]
    assert len(set(every)) == 3 * ports.BLOCK_SIZE
    assert max(every) < 32768  # Linux's ephemeral range: never handed out for port 0
    with pytest.raises(ContainerError, match="no free block of 100 ports"):
        ports.claim_block()
    claimed[1].release()
    assert ports.claim_block().base == claimed[1].base


def test_a_block_another_process_holds_is_skipped_until_that_process_dies(few_blocks, tmp_path):
    holder = _holder(tmp_path, few_blocks)
    try:
        mine = {ports.claim_block().base for _ in range(2)}
        assert few_blocks not in mine
        with pytest.raises(ContainerError):
            ports.claim_block()
    finally:
        holder.kill()
        holder.wait()
    # The kernel drops the lock of a killed process: its block is free again.
    assert ports.claim_block().base == few_blocks


def test_a_block_with_a_port_in_use_is_skipped(few_blocks):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", few_blocks + 7))  # e.g. a leftover of a killed container
        busy.listen()
        claimed = {ports.claim_block().base for _ in range(2)}

    assert few_blocks not in claimed


def test_free_port_never_hands_out_a_port_ray_binds_by_default(monkeypatch):
    handed = iter([52365, 6379, 40123])

    class FakeSocket(socket.socket):
        def getsockname(self):
            return ("127.0.0.1", next(handed))

    monkeypatch.setattr(ports.socket, "socket", FakeSocket)

    assert ports.free_port() == 40123


def test_a_pool_hands_out_consecutive_claimed_ports_and_claims_a_new_block_when_full():
    from container_contract.ports import BLOCK_SIZE, BLOCKS_HIGH, BLOCKS_LOW, PortPool

    pool = PortPool()
    first = pool.take(3)
    (single,) = pool.take(1)
    rest = pool.take(BLOCK_SIZE - 4)
    assert first == [first[0], first[0] + 1, first[0] + 2] and single == first[0] + 3
    assert rest[-1] == first[0] + BLOCK_SIZE - 1  # the block is used up
    (next_block,) = pool.take(1)
    assert next_block // BLOCK_SIZE != first[0] // BLOCK_SIZE
    assert all(BLOCKS_LOW <= p < BLOCKS_HIGH for p in (*first, next_block))  # never ephemeral
    with pytest.raises(ValueError, match="1 to 100 ports"):
        pool.take(BLOCK_SIZE + 1)
