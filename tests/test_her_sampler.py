import numpy as np
import pytest

from her.her_sampler import GRAVITY, STRATEGIES, sample_her_transitions, trajectory_energy

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


def sample(relabel_p, batch_size=20_000, seed=0, episodes=None, strategy="future"):
    episodes = known_episodes() if episodes is None else episodes
    rng = np.random.default_rng(seed)
    return sample_her_transitions(
        episodes, batch_size, rng, relabel_p=relabel_p, reward_fn=reward_fn, strategy=strategy
    )


RELABELLING = ["future", "final", "episode"]


def test_the_table_holds_the_papers_strategies_and_none():
    assert {"future", "final", "episode", "none"} <= set(STRATEGIES)


@pytest.mark.parametrize("strategy", [name for name, choose in STRATEGIES.items() if choose is not None])
def test_every_strategy_picks_an_achieved_goal_the_episode_reached(strategy):
    # Any entry of the table, present or added later: indices into ag[ep] of shape (n,), within [1, T].
    t = np.repeat(np.arange(T), 200)
    index = STRATEGIES[strategy](t, T, np.random.default_rng(0))
    assert index.shape == t.shape and np.issubdtype(index.dtype, np.integer)
    assert index.min() >= 1 and index.max() <= T


@pytest.mark.parametrize("strategy", RELABELLING)
@pytest.mark.parametrize("replay_k", [1, 4, 8])
def test_relabelled_fraction_matches_replay_k(replay_k, strategy):
    relabel_p = 1 - 1 / (1 + replay_k)
    batch = sample(relabel_p, batch_size=100_000, strategy=strategy)
    relabelled = np.mean(batch["g"][:, 0] != -1.0)
    assert relabelled == pytest.approx(relabel_p, abs=0.005)


def test_relabelled_goals_are_later_achieved_goals_of_the_same_episode():
    batch = sample(relabel_p=1.0)
    ep, t = batch["o"][:, 0], batch["o"][:, 1]
    goal_ep, goal_t = np.divmod(batch["g"][:, 0], 100.0)
    assert np.all(goal_ep == ep)
    assert np.all(goal_t > t)
    assert np.all(goal_t <= T)


def test_future_steps_are_uniform_over_the_rest_of_the_episode():
    batch = sample(relabel_p=1.0, batch_size=200_000)
    t = batch["o"][:, 1]
    goal_t = batch["g"][:, 0] % 100.0
    first = goal_t[t == 0]
    counts = np.bincount(first.astype(int), minlength=T + 1)[1:]
    assert np.allclose(counts / counts.sum(), 1 / T, atol=0.01)
    assert np.all(goal_t[t == T - 1] == T)  # from the last step the only later goal is the final one


def test_next_observation_and_goal_are_one_step_later():
    batch = sample(relabel_p=0.5)
    assert np.array_equal(batch["o_2"][:, 1], batch["o"][:, 1] + 1)
    assert np.array_equal(batch["ag_2"][:, 0], batch["ag"][:, 0] + 1)


@pytest.mark.parametrize("strategy", RELABELLING)
def test_rewards_are_recomputed_for_every_row(strategy):
    episodes = known_episodes()
    # Make the original goal of episode 0 equal to its ag at step 3, so some rows are rewarded without relabelling.
    episodes["g"][0] = 3.0
    batch = sample(relabel_p=0.5, episodes=episodes, strategy=strategy)
    expected = -(batch["ag_2"][:, 0] != batch["g"][:, 0]).astype(np.float32)
    assert np.array_equal(batch["r"], expected)
    assert (batch["r"] == 0).any() and (batch["r"] == -1).any()
    not_relabelled_hits = (batch["g"][:, 0] == 3.0) & (batch["ag_2"][:, 0] == 3.0)
    assert not_relabelled_hits.any()


def test_final_relabels_with_the_last_achieved_goal_of_the_same_episode():
    batch = sample(relabel_p=1.0, strategy="final")
    goal_ep, goal_t = np.divmod(batch["g"][:, 0], 100.0)
    assert np.all(goal_ep == batch["o"][:, 0])
    assert np.all(goal_t == T)
    # Only the last step reaches ag[T]: exactly those rows are rewarded.
    assert np.array_equal(batch["r"] == 0, batch["o"][:, 1] == T - 1)


def test_episode_relabels_with_any_reached_goal_of_the_same_episode_whatever_the_step():
    batch = sample(relabel_p=1.0, batch_size=200_000, strategy="episode")
    t = batch["o"][:, 1]
    goal_ep, goal_t = np.divmod(batch["g"][:, 0], 100.0)
    assert np.all(goal_ep == batch["o"][:, 0])
    for step in (0, T - 1):  # earlier goals too: from the last step every goal in [1, T] is drawn
        counts = np.bincount(goal_t[t == step].astype(int), minlength=T + 1)
        assert counts[0] == 0
        assert np.allclose(counts[1:] / counts.sum(), 1 / T, atol=0.01)
    # Rewarded exactly when the drawn goal is the next step's achieved goal: about 1 / T of the rows.
    assert np.array_equal(batch["r"] == 0, goal_t == t + 1)
    assert np.mean(batch["r"] == 0) == pytest.approx(1 / T, abs=0.01)


@pytest.mark.parametrize("relabel_p", [0.0, 1.0])
def test_strategy_none_relabels_nothing(relabel_p):
    batch = sample(relabel_p=relabel_p, strategy="none")
    assert np.all(batch["g"] == -1.0)
    assert np.all(batch["r"] == -1.0)


def test_relabel_p_zero_relabels_nothing_whatever_the_strategy():
    for strategy in RELABELLING:
        assert np.all(sample(relabel_p=0.0, strategy=strategy)["g"] == -1.0)


def test_an_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="use one of future, final, episode, none"):
        sample(relabel_p=0.5, strategy="sometimes")


# The goal step each strategy takes for a row at step t, from the row's uniform draw in [0, 1).
GOAL_STEP = {
    "future": lambda t, draw: t + 1 + int(draw * (T - t)),
    "final": lambda t, draw: T,
    "episode": lambda t, draw: 1 + int(draw * T),
}


@pytest.mark.parametrize("strategy", RELABELLING)
def test_matches_an_index_by_index_loop_with_the_same_random_numbers(strategy):
    episodes = known_episodes()
    batch_size, relabel_p = 64, 0.8
    batch = sample_her_transitions(
        episodes, batch_size, np.random.default_rng(7), relabel_p=relabel_p, reward_fn=reward_fn, strategy=strategy
    )
    rng = np.random.default_rng(7)
    ep = rng.integers(0, N_EP, size=batch_size)
    t = rng.integers(0, T, size=batch_size)
    relabel = rng.random(batch_size) < relabel_p
    draws = rng.random(batch_size)
    for i in range(batch_size):
        goal = episodes["g"][ep[i], t[i]]
        if relabel[i]:
            goal = episodes["ag"][ep[i], GOAL_STEP[strategy](t[i], draws[i])]
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


class ScriptedRng:
    """Hands out fixed numbers in the order the sampler asks for them, so every index can be worked out by hand."""

    def __init__(self, integers, randoms):
        self._integers, self._randoms = list(integers), list(randoms)

    def integers(self, low, high, size):
        return np.asarray(self._integers.pop(0))

    def random(self, size):
        return np.asarray(self._randoms.pop(0))


@pytest.mark.parametrize(
    "strategy, goal_steps",
    [
        # Rows at t = 0, 2, 1 of one episode with T = 3; rows 0 and 2 are relabelled (draws 0.1, 0.2 < 0.5).
        ("future", [1, None, 3]),  # t+1 + int(draw * (T - t)): 1 + int(0 * 3), 2 + int(0.5 * 2)
        ("final", [3, None, 3]),  # always ag[T]
        ("episode", [1, None, 2]),  # 1 + int(draw * T): 1 + int(0 * 3), 1 + int(0.5 * 3)
        ("none", [None, None, None]),
    ],
)
def test_goal_steps_worked_out_by_hand(strategy, goal_steps):
    episodes = {
        "o": np.zeros((1, 4, 1), np.float32),
        "ag": np.array([[[10.0], [11.0], [12.0], [13.0]]]),
        "g": np.full((1, 3, 1), -1.0),
        "u": np.zeros((1, 3, 1), np.float32),
    }
    rng = ScriptedRng(integers=[[0, 0, 0], [0, 2, 1]], randoms=[[0.1, 0.9, 0.2], [0.0, 0.5, 0.5]])
    batch = sample_her_transitions(episodes, 3, rng, relabel_p=0.5, reward_fn=reward_fn, strategy=strategy)
    expected = [-1.0 if step is None else 10.0 + step for step in goal_steps]
    assert batch["g"][:, 0].tolist() == expected
    # ag_2 = ag[t + 1] = 11, 13, 12: a row is rewarded only where its goal is that one.
    assert batch["r"].tolist() == [-float(goal != ag_2) for goal, ag_2 in zip(expected, [11.0, 13.0, 12.0])]


def test_trajectory_energy_worked_out_by_hand():
    steps = 10
    ag = np.zeros((3, steps + 1, 3))
    ag[1, :, 0] = 0.02 * np.arange(steps + 1)  # 0.5 m/s along x for the whole episode
    ag[2, 1:6, 2] = 0.01 * np.arange(1, 6)  # lifted 1 cm a step for 5 steps, then held 5 cm up
    ag[2, 6:, 2] = 0.05
    energy = trajectory_energy(ag, dt=0.04, clip=0.5)
    # Still: nothing. Constant speed: the kinetic energy 0.5 * 0.5^2 gained once. Lifted: kinetic 0.5 * 0.25^2
    # and potential g * 1 cm gained on each of 5 steps; stopping loses the kinetic part, which is not counted.
    np.testing.assert_allclose(energy, [0.0, 0.125, 0.5 * 0.25**2 + GRAVITY * 0.05])
    # Each step's gain is clipped: a 1 m/s start (kinetic 0.5) counts 0.1 with clip 0.1.
    fast = np.zeros((1, 3, 3))
    fast[0, :, 0] = 0.04 * np.arange(3)
    np.testing.assert_allclose(trajectory_energy(fast, dt=0.04, clip=0.1), [0.1])


def test_trajectory_energy_adds_the_points_of_a_multi_object_goal():
    ag = np.zeros((1, 2, 6))
    ag[0, 1, 2] = 0.01  # the first object up by 1 cm
    ag[0, 1, 3] = 0.02  # the second moved 2 cm along x
    expected = 0.5 * (0.01 / 0.04) ** 2 + GRAVITY * 0.01 + 0.5 * (0.02 / 0.04) ** 2
    np.testing.assert_allclose(trajectory_energy(ag, dt=0.04, clip=10.0), [expected])


def test_episodes_are_drawn_in_proportion_to_their_weights():
    weights = np.array([0.0, 1.0, 0.0, 3.0, 0.0, 0.0])
    batch = sample_her_transitions(
        known_episodes(), 40_000, np.random.default_rng(0), relabel_p=0.0, reward_fn=reward_fn, weights=weights
    )
    drawn = np.bincount(batch["o"][:, 0].astype(int), minlength=N_EP) / 40_000
    np.testing.assert_allclose(drawn, weights / weights.sum(), atol=0.01)
    assert drawn[[0, 2, 4, 5]].sum() == 0


def test_weights_of_zeros_draw_uniformly_as_without_them():
    zero = sample_her_transitions(
        known_episodes(), 100, np.random.default_rng(3), relabel_p=0.8, reward_fn=reward_fn, weights=np.zeros(N_EP)
    )
    plain = sample(0.8, batch_size=100, seed=3)
    for key in plain:
        np.testing.assert_array_equal(zero[key], plain[key])


def test_desired_share_gives_relabelled_rows_stored_desired_goals_and_leaves_the_rest():
    # Desired goals g[ep, t] = 1000 + 10*ep + t, told apart from achieved goals (100*ep + t) and from -1.
    episodes = known_episodes()
    episodes["g"] = (1000.0 + 10 * np.arange(N_EP)[:, None] + np.arange(T)[None, :])[..., None].astype(np.float32)
    rng = np.random.default_rng(0)
    batch = sample_her_transitions(
        episodes, 100_000, rng, relabel_p=0.8, reward_fn=reward_fn, strategy="future", desired_share=0.5
    )
    goal = batch["g"][:, 0]
    own = goal == 1000.0 + 10 * batch["o"][:, 0] + batch["o"][:, 1]  # the row's own desired goal, not relabelled
    achieved = goal < 1000.0
    desired = ~own & ~achieved  # another transition's desired goal
    assert np.all(np.isin(goal[desired], episodes["g"].ravel()))
    # 0.2 keep their goal (plus the relabelled rows that drew their own), 0.4 future, 0.4 desired goals
    assert np.mean(achieved) == pytest.approx(0.4, abs=0.01)
    assert np.mean(desired) == pytest.approx(0.4 * (1 - 1 / (N_EP * T)), abs=0.01)
    # desired goals are drawn uniformly over the stored transitions: every (ep, t) about equally often
    counts = np.unique(goal[desired], return_counts=True)[1]
    assert len(counts) == N_EP * T and counts.min() > 0.85 * counts.mean()
    # rewards follow the goal each row ended with
    assert np.array_equal(batch["r"], -(batch["ag_2"][:, 0] != goal).astype(np.float32))


def test_desired_share_zero_draws_the_same_batch_as_without_the_key():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    a = sample_her_transitions(known_episodes(), 500, rng_a, relabel_p=0.8, reward_fn=reward_fn)
    b = sample_her_transitions(known_episodes(), 500, rng_b, relabel_p=0.8, reward_fn=reward_fn, desired_share=0.0)
    for key in a:
        assert np.array_equal(a[key], b[key])
    assert rng_a.random() == rng_b.random()  # and leaves the generator where the reference's sampler does


def test_desired_share_worked_out_by_hand():
    # One episode, T = 3; rows at t = 0, 2, 1, all relabelled (draws 0.1 < 0.5), future goal steps 1, 3, 2; the
    # desired-goal draws 0.3, 0.9, 0.1 < 0.5 pick rows 0 and 2, which take g[0, 2] and g[0, 0].
    episodes = {
        "o": np.zeros((1, 4, 1), np.float32),
        "ag": np.array([[[10.0], [11.0], [12.0], [13.0]]]),
        "g": np.array([[[20.0], [21.0], [22.0]]]),
        "u": np.zeros((1, 3, 1), np.float32),
    }
    rng = ScriptedRng(
        integers=[[0, 0, 0], [0, 2, 1], [0, 0], [2, 0]],
        randoms=[[0.1, 0.1, 0.1], [0.0, 0.5, 0.5], [0.3, 0.9, 0.1]],
    )
    batch = sample_her_transitions(episodes, 3, rng, relabel_p=0.5, reward_fn=reward_fn, desired_share=0.5)
    assert batch["g"][:, 0].tolist() == [22.0, 13.0, 20.0]
