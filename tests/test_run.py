import json

import numpy as np
import pytest

from experiment.config import OPTIONS
from her.logger import read_progress
from her.run import cli

TINY = ["--n_epochs", "2", "--n_cycles", "1", "--n_batches", "2", "--n_test_rollouts", "1", "--buffer_size", "500"]


def test_help_lists_every_key_with_its_default(capsys):
    assert cli(["--help"]) == 0
    text = capsys.readouterr().out
    for f in OPTIONS:
        assert f"--{f.name}" in text
    assert "--num_env" in text and "[default: 256]" in text


def test_overrides_of_every_kind_reach_params_json_and_the_run(tmp_path):
    log = tmp_path / "run"
    args = TINY + [
        "--env", "FetchReach-v4",            # full id
        "--num_env", "1",                   # alias, int
        "--hidden", "16", "--layers", "2",  # network shape
        "--polyak=0.9",                     # float, --key=value form
        "--batch_size", "32",
        "--replay_strategy", "none",        # string
        "--test_with_polyak", "1",          # bool
        "--gamma", "0.9",                   # optional float
        "--seed", "5",
        "--log_path", str(log),
    ]
    assert cli(args) == 0
    params = json.loads((log / "params.json").read_text())
    assert params["env_id"] == "FetchReach-v4" and params["rollout_batch_size"] == 1
    assert (params["hidden"], params["layers"], params["polyak"], params["batch_size"]) == (16, 2, 0.9, 32)
    assert params["replay_strategy"] == "none" and params["test_with_polyak"] is True
    assert params["gamma"] == 0.9 and params["seed"] == 5 and params["mpi_size"] == 1 and params["T"] == 50
    # The network shape really changed: 2 hidden layers of 16 units.
    with np.load(log / "policy_latest.npz") as policy:
        assert policy["actor/0"].shape == (10 + 3, 16)
        assert policy["actor/4"].shape == (16, 4) and "actor/6" not in policy
    rows = read_progress(log / "progress.csv")
    assert [r["epoch"] for r in rows] == [0, 1]
    assert rows[-1]["total/env_steps"] == 2 * 1 * 1 * 50
    assert rows[-1]["total/updates"] == 2 * 2
    assert sorted(p.name for p in log.iterdir()) == ["params.json", "policy_0.npz", "policy_best.npz",
                                                     "policy_latest.npz", "progress.csv"]


REFERENCE_KEYS = ["epoch", "test/success_rate", "test/mean_Q", "test/episode", "train/success_rate",
                  "train/episode", "stats_o/mean", "stats_o/std", "stats_g/mean", "stats_g/std"]
EXTRA_KEYS = ["total/env_steps", "time/total", "loss/critic", "loss/actor", "time/rollout", "time/update",
              "time/eval"]


def test_progress_has_the_reference_keys_and_more(tmp_path, capsys):
    log = tmp_path / "run"
    assert cli(TINY + ["--num_env", "1", "--log_path", str(log)]) == 0
    rows = read_progress(log / "progress.csv")
    for key in REFERENCE_KEYS + EXTRA_KEYS:
        assert key in rows[0] and np.isfinite(rows[0][key]), key
    out = capsys.readouterr().out
    assert "| test/success_rate" in out  # the stdout table


@pytest.mark.parametrize("args, message", [
    (["--batchsize", "3"], "unknown configuration key --batchsize (did you mean --batch_size?)"),
    (["--env", "FetchDance"], "unknown task 'FetchDance'"),
    (["--polyak", "2"], "polyak must be in [0, 1], got 2.0"),
])
def test_bad_flags_exit_2_with_one_line(args, message, capsys, tmp_path):
    assert cli(args + ["--log_path", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
