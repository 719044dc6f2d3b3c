"""Learning checks, budgeted in samples (epochs and seeds), never in wall time."""

import pytest

from her.config import build_config
from her.train import train


@pytest.mark.slow
def test_fetch_reach_reaches_90_percent_test_success_within_10_epochs(tmp_path):
    # Reference: baselines reaches 1.0 on FetchReach in under 5,000 env steps on one process.
    config = build_config({"env": "FetchReach", "n_epochs": 10, "seed": 0, "log_path": str(tmp_path)})
    rows = train(config)
    curve = [row["test/success_rate"] for row in rows]
    assert len(curve) == 10
    assert max(curve) >= 0.9, curve
    assert rows[-1]["test/success_rate"] >= 0.9, curve  # and it stays solved


def test_hindsight_goals_are_what_makes_bit_flipping_learnable(tmp_path, bits_env_id):
    # 8 bits: plain DDPG matches a random goal once in 256 steps and sees no reward to learn from; 'future'
    # relabelling turns every episode into rewarded examples. About 5 s per run, 12 epochs of 200 env steps.
    def curve(strategy):
        config = build_config(
            {
                "env": bits_env_id,
                "replay_strategy": strategy,
                "n_epochs": 12,
                "n_cycles": 10,
                "n_batches": 40,
                "batch_size": 128,
                "hidden": 32,
                "layers": 2,
                "n_test_rollouts": 10,
                "num_env": 2,
                "buffer_size": 10_000,
                "seed": 0,
                "tensorboard": False,
                "log_path": str(tmp_path / strategy),
            }
        )
        return [row["test/success_rate"] for row in train(config)]

    her, plain = curve("future"), curve("none")
    assert max(her) >= 0.6 and sum(her[-3:]) / 3 >= 0.5, her
    assert max(plain) <= 0.1, plain  # a chance match at most: 20 test episodes, each 1 in 256
