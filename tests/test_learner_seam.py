"""A new learner is one module and one entry of ``her.learner.LEARNERS``: this file is that module. Its learner
trains, logs its own metric, saves, resumes exactly and plays from its policy file, with nothing else changed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import DDPG_ARGS, TINY_DIMS, tiny_run

import her.policy
from her import learner as learners
from her import policy_file
from her.config import ConfigError, build_config, config_from_dict
from her.ddpg import DDPG
from her.envs import make_env
from her.learner import Batch
from her.logger import read_progress
from her.parts import make_learner
from her.train import resume, train


class HardTargetDDPG(DDPG):
    """DDPG whose targets are copies of the main networks, refreshed every cycle, and which logs the mean reward of
    the batches it learned from."""

    def update_target_net(self) -> None:
        # Not the base's update: the numpy copy acting reads must still be refreshed after it.
        self._copy(self.main_params, self.target_params)

    def train_steps(self, batches: Batch) -> dict[str, np.ndarray]:
        return {**super().train_steps(batches), "batch_reward": np.mean(batches.r, axis=1)}


ENTRY = learners.LearnerEntry(HardTargetDDPG, "DDPG with hard target copies (a test's)")


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(learners.LEARNERS, "hard_target", ENTRY)


def untimed(rows):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def test_acting_sees_every_change_a_derived_learner_makes_to_the_weights():
    agent = HardTargetDDPG(TINY_DIMS, **DDPG_ARGS)
    o, g = np.ones((3, 2), np.float32), np.zeros((3, 1), np.float32)
    for var in agent.main_params:
        var.assign(var + 0.5)
    before, _ = agent.get_actions(o, g, use_target_net=True)
    agent.update_target_net()
    after, _ = agent.get_actions(o, g, use_target_net=True)
    graph, _ = agent.act_tf(tf.constant(o), tf.constant(g), True, False)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, graph.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # three runs of one or two epochs
def test_a_learner_registered_here_trains_logs_resumes_exactly_and_plays(tmp_path, registered):
    run = tiny_run(learner="hard_target", buffer_save_interval=1)
    straight = train(build_config({**run, "n_epochs": 2, "log_path": tmp_path / "straight"}))
    # Its own metric is logged, under its own name, beside DDPG's columns in their order.
    columns = list(straight[0])
    assert columns.index("loss/critic") < columns.index("loss/actor") < columns.index("batch_reward")
    assert all(-1.0 <= row["batch_reward"] <= 0.0 for row in straight)

    train(build_config({**run, "n_epochs": 1, "log_path": tmp_path / "resumed"}))
    resume(tmp_path / "resumed", n_epochs=2)
    assert untimed(read_progress(tmp_path / "resumed" / "progress.csv")) == untimed(straight)

    policy = her.policy.load(tmp_path / "resumed")
    assert policy.head == "deterministic" and policy.config["learner"] == "hard_target"
    # The file acts as the learner it was saved from does.
    arrays, meta = policy_file.read_policy(tmp_path / "resumed" / "policy_latest.npz")
    config = config_from_dict(meta["config"])
    again = make_learner(config, meta["dims"])
    assert isinstance(again, HardTargetDDPG)
    again.load_network_state(arrays)
    env = make_env(policy.env_id, seed=5)
    obs, _ = env.reset()
    for _ in range(env.spec.max_episode_steps):
        action = policy.act(obs)
        expected, _ = again.get_actions(obs["observation"][None], obs["desired_goal"][None])
        np.testing.assert_allclose(action, expected[0], rtol=1e-6, atol=1e-7)
        obs, _, _, _, info = env.step(action)


def test_the_configuration_knows_a_learner_only_once_registered(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="learner must be one of 'ddpg', 'twin', got 'hard_target'"):
        build_config({**tiny_run(), "learner": "hard_target", "log_path": tmp_path})
    monkeypatch.setitem(learners.LEARNERS, "hard_target", ENTRY)
    assert build_config({**tiny_run(), "learner": "hard_target", "log_path": tmp_path}).learner == "hard_target"
