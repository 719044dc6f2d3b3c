"""Start strategies: the factory picks the configured one, and each begins episodes where it says."""

from __future__ import annotations

import numpy as np
from conftest import tiny_run

from her.config import build_config
from her.envs import make_env
from her.experts import generate
from her.starts import DemoStates, EnvReset, training_starts


def test_training_starts_follow_demo_reset_p():
    env = make_env("FetchPickAndPlace-v4", seed=0)
    assert isinstance(training_starts(build_config(tiny_run(env="FetchPickAndPlace")), None, [env]), EnvReset)
    demos = generate("FetchPickAndPlace-v4", 1, seed=0).episodes
    config = build_config(tiny_run(env="FetchPickAndPlace", demo_file="demos.npz", demo_reset_p=1.0, batch_size=256))
    starts = training_starts(config, demos, [env])
    assert isinstance(starts, DemoStates) and starts.p == 1.0
    obs = starts.start(0, env, np.random.default_rng(0))
    # Every start is a demo state with the demo's final achieved goal as its goal.
    np.testing.assert_array_equal(obs["desired_goal"].astype(np.float32), demos["ag"][0, -1])
    assert any(np.array_equal(obs["observation"].astype(np.float32), o) for o in demos["o"][0])
