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


def test_std_floor_and_clipping():
    norm = Normalizer(2, eps=0.01, clip_range=5.0)
    norm.update(np.zeros((100, 2)))
    norm.recompute_stats()
    assert np.all(norm.std == 0.01)
    out = norm.normalize(np.array([[1.0, -0.001]]))
    assert np.array_equal(out, [[5.0, -0.1]])


def test_injected_reduce_pools_workers():
    # A fake second worker whose local sums equal ours: averaging gives the same sums, count 1 + n.
    x = np.arange(12.0).reshape(6, 2)
    pooled = Normalizer(2, reduce=lambda local: (local + local) / 2)
    pooled.update(x)
    pooled.recompute_stats()
    alone = Normalizer(2)
    alone.update(x)
    alone.recompute_stats()
    assert np.allclose(pooled.mean, alone.mean) and np.allclose(pooled.std, alone.std)

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
