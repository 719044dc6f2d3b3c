"""Learning checks, budgeted in samples (epochs and seeds), never in wall time."""

from experiment.config import build_config
from her.train import train


def test_fetch_reach_reaches_90_percent_test_success_within_10_epochs(tmp_path):
    # Reference: baselines reaches 1.0 on FetchReach in under 5,000 env steps on one process.
    config = build_config({"env": "FetchReach", "n_epochs": 10, "seed": 0, "log_path": str(tmp_path)})
    rows = train(config)
    curve = [row["test/success_rate"] for row in rows]
    assert len(curve) == 10
    assert max(curve) >= 0.9, curve
    assert rows[-1]["test/success_rate"] >= 0.9, curve  # and it stays solved
