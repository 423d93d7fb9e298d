"""Spot-safe checkpoints: atomic, rotated, found again; torn writes are never picked up."""

import json

import pytest
from common.checkpoint import CheckpointManager, check_fingerprint, write_atomically
from common.env import UsageError


def save(manager, epoch, step, global_step, payload="x"):
    return manager.save(
        epoch=epoch,
        step_in_epoch=step,
        global_step=global_step,
        meta={"note": payload},
        write=lambda folder: (folder / "state.bin").write_text(payload),
    )


def test_latest_is_the_highest_global_step_and_old_ones_are_rotated(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    for global_step in (5, 10, 15):
        save(manager, global_step // 10, global_step % 10, global_step, f"s{global_step}")

    names = [c.path.name for c in manager.list()]
    assert names == ["ckpt-e00001-s000000010", "ckpt-e00001-s000000015"]
    latest = manager.latest()
    assert latest.meta["global_step"] == 15 and latest.meta["note"] == "s15"
    assert (latest.step_in_epoch, latest.epoch) == (5, 1)
    assert (latest.path / "state.bin").read_text() == "s15"


def test_a_write_that_dies_midway_leaves_the_previous_checkpoint(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    save(manager, 0, 3, 3)

    def crash(folder):
        (folder / "state.bin").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        manager.save(epoch=0, step_in_epoch=6, global_step=6, meta={}, write=crash)
    assert manager.latest().meta["global_step"] == 3
    assert not list(tmp_path.glob(".tmp-*")), "the temporary folder was not cleaned up"


def test_torn_or_foreign_folders_are_ignored(tmp_path):
    manager = CheckpointManager(tmp_path)
    save(manager, 1, 0, 8)
    # A killed process's temporary folder, a folder without meta, unreadable meta.
    (tmp_path / ".tmp-ckpt-e00002-s000000099-abc").mkdir()
    (tmp_path / "ckpt-e00003-s000000100").mkdir()
    (tmp_path / "ckpt-e00004-s000000200").mkdir()
    (tmp_path / "ckpt-e00004-s000000200" / "meta.json").write_text("{not json")
    assert manager.latest().meta["global_step"] == 8


def test_non_writer_ranks_write_nothing(tmp_path):
    assert save(CheckpointManager(tmp_path, writer=False), 0, 1, 1) is None
    assert not any(tmp_path.iterdir())


def test_write_atomically_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "model"
    write_atomically(target, lambda f: (f / "a.json").write_text(json.dumps(1)))
    write_atomically(target, lambda f: (f / "b.json").write_text(json.dumps(2)))
    assert sorted(p.name for p in target.iterdir()) == ["b.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_fingerprint_mismatch_names_the_setting_and_the_way_out(tmp_path):
    check_fingerprint({"lr": 0.1}, {"lr": 0.1}, tmp_path)
    with pytest.raises(UsageError, match=r"lr: checkpoint 0.1, now 0.2.*--resume false"):
        check_fingerprint({"lr": 0.1}, {"lr": 0.2}, tmp_path)
