from functools import partial

import numpy as np
import pytest

from her.her_sampler import sample_her_transitions
from her.replay_buffer import ReplayBuffer, episode_shapes

DIMS = {"o": 3, "g": 2, "u": 4}
T = 5


def episodes(n, marker):
    """n episodes whose every entry equals ``marker`` (one marker per episode if a sequence)."""
    markers = np.broadcast_to(np.asarray(marker, np.float32), (n,))
    return {
        key: np.ones((n, *shape), np.float32) * markers.reshape(-1, 1, 1)
        for key, shape in episode_shapes(DIMS, T).items()
    }


def return_episodes(eps, batch_size, rng):
    return eps


def test_layout_holds_T_plus_one_observations_and_T_transitions():
    buffer = ReplayBuffer(episode_shapes(DIMS, T), 7, return_episodes)
    shapes = {key: array.shape for key, array in buffer.buffers.items()}
    assert shapes == {
        "o": (7, T + 1, 3),
        "ag": (7, T + 1, 2),
        "g": (7, T, 2),
        "u": (7, T, 4),
        "info_is_success": (7, T, 1),
    }
    assert all(array.dtype == np.float32 for array in buffer.buffers.values())
    assert buffer.nbytes == 7 * 4 * ((T + 1) * 5 + T * 7)


def test_fills_sequentially_then_overwrites_random_slots():
    buffer = ReplayBuffer(episode_shapes(DIMS, T), 5, return_episodes)
    rng = np.random.default_rng(0)
    assert list(buffer.store_episode(episodes(3, 1.0), rng)) == [0, 1, 2]
    idx = buffer.store_episode(episodes(3, 2.0), rng)
    # The two free slots first, then one random slot among those filled before this call.
    assert list(idx[:2]) == [3, 4] and 0 <= idx[2] < 3
    assert buffer.full and buffer.current_size == 5
    seen = set()
    for _ in range(50):
        idx = buffer.store_episode(episodes(2, 3.0), rng)
        assert all(0 <= i < 5 for i in idx)
        seen.update(idx.tolist())
    assert seen == {0, 1, 2, 3, 4}  # uniform over all slots, not a FIFO ring
    assert buffer.n_transitions_stored == (3 + 3 + 100) * T


def test_samples_only_filled_slots():
    sampler = partial(sample_her_transitions, relabel_p=0.8, reward_fn=lambda ag_2, g, info: np.zeros(len(g)))
    buffer = ReplayBuffer(episode_shapes(DIMS, T), 10, sampler)
    rng = np.random.default_rng(0)
    buffer.store_episode(episodes(2, [1.0, 2.0]), rng)
    batch = buffer.sample(5_000, rng)
    assert set(np.unique(batch["o"])) == {1.0, 2.0}  # never the zeros of the 8 empty slots
    assert set(np.unique(batch["g"])) == {1.0, 2.0}


def test_sampling_an_empty_buffer_says_what_to_do():
    buffer = ReplayBuffer(episode_shapes(DIMS, T), 3, return_episodes)
    with pytest.raises(RuntimeError, match="store an episode first"):
        buffer.sample(4, np.random.default_rng(0))


def test_state_dict_round_trip():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(episode_shapes(DIMS, T), 4, return_episodes)
    buffer.store_episode(episodes(3, [1.0, 2.0, 3.0]), rng)
    restored = ReplayBuffer(episode_shapes(DIMS, T), 4, return_episodes)
    restored.load_state_dict(buffer.state_dict())
    assert restored.current_size == 3 and restored.n_transitions_stored == 3 * T
    for key in buffer.buffers:
        assert np.array_equal(restored.buffers[key], buffer.buffers[key])


def test_a_priority_weighs_each_episode_once_when_stored_and_again_when_loaded():
    def marker_weight(eps):  # an episode's weight is its marker
        return eps["u"][:, 0, 0].astype(np.float64)

    def weights_seen(eps, batch_size, rng, weights=None):
        return {"weights": weights}

    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(episode_shapes(DIMS, T), 4, weights_seen, priority=marker_weight)
    buffer.store_episode(episodes(3, [1.0, 0.0, 5.0]), rng)
    np.testing.assert_array_equal(buffer.sample(8, rng)["weights"], [1.0, 0.0, 5.0])  # filled slots only
    restored = ReplayBuffer(episode_shapes(DIMS, T), 4, weights_seen, priority=marker_weight)
    restored.load_state_dict(buffer.state_dict())
    np.testing.assert_array_equal(restored.sample(8, rng)["weights"], [1.0, 0.0, 5.0])
    sampler = partial(sample_her_transitions, relabel_p=0.0, reward_fn=lambda ag_2, g, info: np.zeros(len(g)))
    weighted = ReplayBuffer(episode_shapes(DIMS, T), 4, sampler, priority=marker_weight)
    weighted.store_episode(episodes(3, [1.0, 0.0, 5.0]), rng)
    drawn = weighted.sample(6_000, rng)["o"][:, 0]
    assert 0.0 not in drawn and abs(np.mean(drawn == 5.0) - 5 / 6) < 0.02
