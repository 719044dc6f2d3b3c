import numpy as np
import pytest

from her.her_sampler import sample_her_transitions

N_EP, T = 6, 5


def known_episodes():
    """ag[ep, t] = 100*ep + t, so a goal value tells which episode and step it came from.

    o[ep, t] = [ep, t]; the original goal is -1 everywhere, which no achieved goal equals.
    """
    ep = np.arange(N_EP)[:, None]
    t = np.arange(T + 1)[None, :]
    ag = (100.0 * ep + t)[..., None].astype(np.float32)  # (N_EP, T+1, 1)
    o = np.stack(np.broadcast_arrays(ep, t), axis=-1).astype(np.float32)  # (N_EP, T+1, 2)
    return {
        "o": o,
        "ag": ag,
        "g": np.full((N_EP, T, 1), -1.0, np.float32),
        "u": np.zeros((N_EP, T, 2), np.float32),
        "info_is_success": np.zeros((N_EP, T, 1), np.float32),
    }


def reward_fn(ag_2, g, info):
    return -(ag_2[:, 0] != g[:, 0]).astype(np.float32)


def sample(future_p, batch_size=20_000, seed=0, episodes=None):
    episodes = known_episodes() if episodes is None else episodes
    rng = np.random.default_rng(seed)
    return sample_her_transitions(episodes, batch_size, rng, future_p=future_p, reward_fn=reward_fn)


@pytest.mark.parametrize("replay_k", [1, 4, 8])
def test_relabelled_fraction_matches_replay_k(replay_k):
    future_p = 1 - 1 / (1 + replay_k)
    batch = sample(future_p, batch_size=100_000)
    relabelled = np.mean(batch["g"][:, 0] != -1.0)
    assert relabelled == pytest.approx(future_p, abs=0.005)


def test_relabelled_goals_are_later_achieved_goals_of_the_same_episode():
    batch = sample(future_p=1.0)
    ep, t = batch["o"][:, 0], batch["o"][:, 1]
    goal_ep, goal_t = np.divmod(batch["g"][:, 0], 100.0)
    assert np.all(goal_ep == ep)
    assert np.all(goal_t > t)
    assert np.all(goal_t <= T)


def test_future_steps_are_uniform_over_the_rest_of_the_episode():
    batch = sample(future_p=1.0, batch_size=200_000)
    t = batch["o"][:, 1]
    goal_t = batch["g"][:, 0] % 100.0
    first = goal_t[t == 0]
    counts = np.bincount(first.astype(int), minlength=T + 1)[1:]
    assert np.allclose(counts / counts.sum(), 1 / T, atol=0.01)
    assert np.all(goal_t[t == T - 1] == T)  # from the last step the only later goal is the final one


def test_next_observation_and_goal_are_one_step_later():
    batch = sample(future_p=0.5)
    assert np.array_equal(batch["o_2"][:, 1], batch["o"][:, 1] + 1)
    assert np.array_equal(batch["ag_2"][:, 0], batch["ag"][:, 0] + 1)


def test_rewards_are_recomputed_for_every_row():
    episodes = known_episodes()
    # Make the original goal of episode 0 equal to its ag at step 3, so some rows are rewarded without relabelling.
    episodes["g"][0] = 3.0
    batch = sample(future_p=0.5, episodes=episodes)
    expected = -(batch["ag_2"][:, 0] != batch["g"][:, 0]).astype(np.float32)
    assert np.array_equal(batch["r"], expected)
    assert (batch["r"] == 0).any() and (batch["r"] == -1).any()
    not_relabelled_hits = (batch["g"][:, 0] == 3.0) & (batch["ag_2"][:, 0] == 3.0)
    assert not_relabelled_hits.any()


def test_strategy_none_relabels_nothing():
    batch = sample(future_p=0.0)
    assert np.all(batch["g"] == -1.0)
    assert np.all(batch["r"] == -1.0)


def test_matches_an_index_by_index_loop_with_the_same_random_numbers():
    episodes = known_episodes()
    batch_size, future_p = 64, 0.8
    batch = sample_her_transitions(episodes, batch_size, np.random.default_rng(7), future_p=future_p,
                                   reward_fn=reward_fn)
    rng = np.random.default_rng(7)
    ep = rng.integers(0, N_EP, size=batch_size)
    t = rng.integers(0, T, size=batch_size)
    relabel = rng.random(batch_size) < future_p
    offsets = rng.random(batch_size)
    for i in range(batch_size):
        goal = episodes["g"][ep[i], t[i]]
        if relabel[i]:
            goal = episodes["ag"][ep[i], t[i] + 1 + int(offsets[i] * (T - t[i]))]
        assert np.array_equal(batch["g"][i], goal)
        assert np.array_equal(batch["o"][i], episodes["o"][ep[i], t[i]])
        assert np.array_equal(batch["o_2"][i], episodes["o"][ep[i], t[i] + 1])
        assert batch["r"][i] == -float(episodes["ag"][ep[i], t[i] + 1, 0] != goal[0])


def test_same_rng_seed_gives_the_same_batch_and_episodes_are_not_modified():
    episodes = known_episodes()
    before = {k: v.copy() for k, v in episodes.items()}
    a = sample(0.8, batch_size=100, seed=3, episodes=episodes)
    b = sample(0.8, batch_size=100, seed=3, episodes=episodes)
    for key in a:
        assert np.array_equal(a[key], b[key])
    for key in before:
        assert np.array_equal(before[key], episodes[key])
