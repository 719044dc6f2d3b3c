"""The committed result policies still do what the README's table says: a guard for the env, observation and
actor paths, which a library upgrade or a refactor could otherwise break without any other test noticing."""

from __future__ import annotations

import numpy as np
import pytest

import her.policy
from experiment import results
from her.envs import make_env

ROWS = [name for name in results.ROWS if (results.RESULTS / name / "policy.npz").exists()]
EPISODES = 20


def test_every_row_of_the_table_with_runs_has_a_policy():
    with_runs = [name for name in results.ROWS if results.read_runs(name)]
    assert with_runs and set(with_runs) <= set(ROWS)


@pytest.mark.parametrize("name", ROWS)
def test_a_committed_policy_succeeds_about_as_often_as_its_row_says(name):
    policy = her.policy.load(results.RESULTS / name / "policy.npz")
    env = make_env(policy.env_id, seed=12345)  # unseen by any run, which used seeds 100-102
    successes = []
    for _ in range(EPISODES):
        obs, _ = env.reset()
        for _ in range(env.spec.max_episode_steps):
            obs, _, _, _, info = env.step(policy.act(obs))
        successes.append(info["is_success"])
    finals = [results.final_success(rows) for _, rows in results.read_runs(name)]
    # 20 episodes measure a 0.95 success rate to within about +-0.1; a broken path drops it to near 0.
    assert np.mean(successes) >= np.median(finals) - 0.25, (name, np.mean(successes), finals)
