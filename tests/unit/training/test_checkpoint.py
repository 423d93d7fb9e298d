"""Spot-safe checkpoints: atomic, rotated, found again; torn writes are never picked up."""

import hashlib
import json
import re

import pytest

from training.common.checkpoint import CheckpointManager, check_fingerprint, write_atomically
from training.common.env import UsageError


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


def read_state(checkpoint):
    return (checkpoint.path / "state.bin").read_text()


def test_each_checkpoint_records_its_files_sizes_and_hashes(tmp_path):
    manager = CheckpointManager(tmp_path)
    path = save(manager, 0, 2, 2, "weights")
    files = json.loads((path / "meta.json").read_text())["files"]
    assert files == {"state.bin": {"bytes": 7, "sha256": hashlib.sha256(b"weights").hexdigest()}}
    assert manager.load_latest(read_state)[1] == "weights"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: f.write_bytes(f.read_bytes()[:3]), r"has 3 bytes, 11 when it was saved"),
        (lambda f: f.write_text("s15-flipped"), r"does not match its SHA-256"),
        (lambda f: f.unlink(), r"is missing"),
    ],
    ids=["truncated", "bit-flipped", "missing"],
)
def test_a_damaged_newest_checkpoint_is_skipped_named_and_set_aside(
    tmp_path, caplog, damage, reason
):
    # Given three checkpoints, the newest damaged after it was written
    manager = CheckpointManager(tmp_path, keep=3)
    for global_step in (5, 10, 15):
        save(manager, 0, global_step, global_step, f"payload-s{global_step:02d}")
    newest = tmp_path / "ckpt-e00000-s000000015"
    damage(newest / "state.bin")

    # When a run resumes
    with caplog.at_level("WARNING"):
        checkpoint, state = manager.load_latest(read_state)

    # Then it resumes from the previous one, says which file was bad, and moved it aside
    assert (checkpoint.global_step, state) == (10, "payload-s10")
    assert re.search(r"skipping corrupt checkpoint ckpt-e00000-s000000015: .*state\.bin " + reason,
                     caplog.text), caplog.text  # fmt: skip
    assert "moved it to" in caplog.text
    assert not newest.exists()
    assert (tmp_path / "corrupt" / newest.name / "state.bin").exists() or reason == r"is missing"
    assert [c.global_step for c in manager.list()] == [5, 10]
    # and rotation after the next save keeps the good ones, not the damaged one
    save(manager, 0, 20, 20, "payload-s20")
    assert [c.global_step for c in manager.list()] == [5, 10, 20]


def test_an_unreadable_checkpoint_without_a_manifest_falls_back_through_the_loader(
    tmp_path, caplog
):
    # Given checkpoints from before the manifest, the newest one unreadable by the framework
    manager = CheckpointManager(tmp_path)
    for global_step in (4, 8):
        path = save(manager, 0, global_step, global_step, f"s{global_step}")
        meta = json.loads((path / "meta.json").read_text())
        del meta["files"]
        (path / "meta.json").write_text(json.dumps(meta))

    def load(checkpoint):
        text = read_state(checkpoint)
        if text == "s8":
            raise EOFError("Ran out of input")
        return text

    # When a run resumes, the loader's error counts as damage, with its type in the warning
    with caplog.at_level("WARNING"):
        checkpoint, state = manager.load_latest(load)
    assert state == "s4"
    assert "ckpt-e00000-s000000008: EOFError: Ran out of input" in caplog.text


def test_every_checkpoint_damaged_means_starting_over_with_a_warning(tmp_path, caplog):
    manager = CheckpointManager(tmp_path)
    for global_step in (4, 8):
        path = save(manager, 0, global_step, global_step)
        (path / "state.bin").write_bytes(b"")
    with caplog.at_level("WARNING"):
        assert manager.load_latest(read_state) is None
    assert "no usable checkpoint" in caplog.text and "starting from the beginning" in caplog.text
    assert sorted(p.name for p in (tmp_path / "corrupt").iterdir()) == [
        "ckpt-e00000-s000000004",
        "ckpt-e00000-s000000008",
    ]


def test_a_checkpoint_from_other_settings_is_refused_not_set_aside(tmp_path):
    manager = CheckpointManager(tmp_path)
    save(manager, 0, 4, 4)

    def load(checkpoint):
        check_fingerprint({"lr": 0.1}, {"lr": 0.2}, tmp_path)

    with pytest.raises(UsageError, match="other settings"):
        manager.load_latest(load)
    assert [c.global_step for c in manager.list()] == [4]


def test_other_ranks_skip_a_damaged_checkpoint_but_leave_moving_it_to_rank_0(tmp_path):
    writer = CheckpointManager(tmp_path)
    for global_step in (4, 8):
        save(writer, 0, global_step, global_step, f"s{global_step}")
    (tmp_path / "ckpt-e00000-s000000008" / "state.bin").write_text("x")
    reader = CheckpointManager(tmp_path, writer=False)
    assert reader.load_latest(read_state)[1] == "s4"
    assert (tmp_path / "ckpt-e00000-s000000008").exists()
