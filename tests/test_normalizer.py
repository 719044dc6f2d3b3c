import numpy as np
import pytest

from her.normalizer import Normalizer


def with_zero_row(x):
    # The count starts at 1 with zero sums: the statistics are those of the data plus one all-zero row.
    return np.vstack([x, np.zeros((1, x.shape[1]))])


def test_mean_and_std_equal_numpy_with_the_count_starting_at_one():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(1000, 4))
    norm = Normalizer(4)
    norm.update(x[:400])
    norm.update(x[400:])
    norm.recompute_stats()
    assert np.allclose(norm.mean, np.mean(with_zero_row(x), axis=0))
    assert np.allclose(norm.std, np.std(with_zero_row(x), axis=0))


def test_statistics_accumulate_over_recomputes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 2))
    norm = Normalizer(2)
    for chunk in np.split(x, 3):
        norm.update(chunk)
        norm.recompute_stats()
    assert norm.count == 301
    assert np.allclose(norm.mean, np.mean(with_zero_row(x), axis=0))


def test_small_case_by_hand():
    norm = Normalizer(1)
    norm.update(np.array([[2.0], [4.0], [6.0]]))
    norm.recompute_stats()
    # sum 12, sumsq 56, count 4: mean 3, var 56/4 - 9 = 5
    assert norm.mean[0] == pytest.approx(3.0)
    assert norm.std[0] == pytest.approx(np.sqrt(5.0))


def test_std_floor():
    norm = Normalizer(2, eps=0.01)
    norm.update(np.zeros((100, 2)))
    norm.recompute_stats()
    assert np.all(norm.std == 0.01)


def local_stats(v):
    return np.concatenate([v.sum(0), (v**2).sum(0), [len(v)]])


def test_injected_reduce_pools_ranks():
    # A reduce that adds a fake second rank's sums: the statistics become those of one process that saw both.
    x = np.arange(12.0).reshape(6, 2)
    y = np.random.default_rng(2).normal(10.0, 3.0, size=(9, 2))
    seen = []
    pooled = Normalizer(2, reduce=lambda local: seen.append(local.copy()) or local + local_stats(y))
    pooled.update(x)
    pooled.recompute_stats()
    assert len(seen) == 1 and np.array_equal(seen[0], local_stats(x))  # one call, with this rank's sums
    assert pooled.count == 1 + 6 + 9
    both = np.vstack([x, y])
    assert np.allclose(pooled.mean, np.mean(with_zero_row(both), axis=0))
    assert np.allclose(pooled.std, np.std(with_zero_row(both), axis=0))
    alone = Normalizer(2)
    alone.update(x)
    alone.recompute_stats()
    assert not np.allclose(pooled.mean, alone.mean)
    # The local sums are emptied: the next recompute sends only what came since.
    pooled.update(x[:2])
    pooled.recompute_stats()
    assert np.array_equal(seen[1], local_stats(x[:2]))

    other = np.concatenate([x.sum(0) + 6.0, (x**2).sum(0) + 1.0, [6.0]])
    mixed = Normalizer(2, reduce=lambda local: (local + other) / 2)
    mixed.update(x)
    mixed.recompute_stats()
    assert mixed.count == 1 + 6
    assert np.allclose(mixed.mean, (x.sum(0) + 3.0) / 7)


def test_state_dict_round_trip():
    norm = Normalizer(3)
    norm.update(np.random.default_rng(0).normal(size=(50, 3)))
    norm.recompute_stats()
    copy = Normalizer(3)
    copy.load_state_dict(norm.state_dict())
    assert np.array_equal(copy.mean, norm.mean) and np.array_equal(copy.std, norm.std)
