"""torch_training.data's batches: deterministic per epoch, sharded across ranks, resumable."""

import numpy as np
import pytest

from training.prepare_digits import split_indices
from training.torch_training.data import EpochBatches, EvalBatches


def indices(batches):
    return [i for batch in batches for i, _ in batch]


def test_each_epoch_is_a_seeded_permutation():
    sampler = EpochBatches(50, 8, rank=0, world=1, seed=3)
    sampler.set_epoch(0)
    first = indices(sampler)
    sampler.set_epoch(1)
    second = indices(sampler)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second
    sampler.set_epoch(0)
    assert indices(sampler) == first


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_share_the_epoch_evenly_and_cover_it(world):
    samplers = [EpochBatches(50, 4, rank=r, world=world, seed=0) for r in range(world)]
    for s in samplers:
        s.set_epoch(2)
    seen = [indices(s) for s in samplers]
    assert len({len(s) for s in samplers}) == 1  # DDP needs equal step counts
    assert set().union(*map(set, seen)) == set(range(50))


def test_resume_skips_exactly_the_steps_done():
    sampler = EpochBatches(50, 8, rank=0, world=1, seed=1)
    sampler.set_epoch(4)
    full = list(sampler)
    sampler.set_epoch(4, start_step=3)
    assert list(sampler) == full[3:] and len(sampler) == len(full) - 3


def test_eval_shards_do_not_pad():
    shards = [indices(EvalBatches(10, 3, rank=r, world=3)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))


def test_digits_split_is_stratified_disjoint_and_fixed():
    labels = np.repeat(np.arange(10), 30)
    a = split_indices(labels, 0.15, 0.15, seed=0)
    b = split_indices(labels, 0.15, 0.15, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    everything = np.concatenate(list(a.values()))
    assert sorted(everything) == list(range(300))
    for split in ("valid", "test"):
        assert np.bincount(labels[a[split]]).min() >= 4  # every digit in every split
