import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_args

from her.config import OPTIONS
from her.logger import read_progress
from her.run import cli

# The run's length only, not conftest's whole TINY_RUN: these tests pass the task and network keys themselves.
TINY = cli_args({"n_epochs": 2, "n_cycles": 1, "n_batches": 2, "n_test_rollouts": 1, "buffer_size": 500})


def test_help_lists_every_key_with_its_default(capsys):
    assert cli(["--help"]) == 0
    text = capsys.readouterr().out
    for f in OPTIONS:
        assert f"--{f.name}" in text
    assert "--num_env" in text and "[default: 256]" in text


def test_overrides_of_every_kind_reach_params_json_and_the_run(tmp_path):
    log = tmp_path / "run"
    args = TINY + [
        "--env",
        "FetchReach-v4",  # full id
        "--num_env",
        "1",  # alias, int
        "--hidden",
        "16",
        "--layers",
        "2",  # network shape
        "--polyak=0.9",  # float, --key=value form
        "--batch_size",
        "32",
        "--replay_strategy",
        "none",  # string
        "--test_with_polyak",
        "1",  # bool
        "--gamma",
        "0.9",  # optional float
        "--seed",
        "5",
        "--log_path",
        str(log),
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
    files = sorted(p.name for p in log.iterdir() if not p.name.startswith("events.out.tfevents."))
    assert files == [
        ".lock",
        "checkpoints",
        "params.json",
        "policy_0.npz",
        "policy_best.npz",
        "policy_latest.npz",
        "progress.csv",
        "versions.json",
    ]
    # Two committed checkpoints, each complete; buffer_save_interval 5 > 2 epochs: the buffer is still saved
    # after the last epoch.
    assert sorted(p.name for p in (log / "checkpoints").iterdir()) == ["epoch_000000", "epoch_000001"]
    assert sorted(p.name for p in (log / "checkpoints" / "epoch_000001").iterdir()) == [
        "buffer_rank0.npz",
        "policy_best.npz",
        "policy_latest.npz",
        "progress.csv",
        "state_rank0.npz",
    ]
    # The published files hold the newest checkpoint's bytes, as files of their own (a user may edit them).
    for name in ("progress.csv", "policy_latest.npz"):
        published, kept = log / name, log / "checkpoints" / "epoch_000001" / name
        assert published.read_bytes() == kept.read_bytes() and not published.samefile(kept)


REFERENCE_KEYS = [
    "epoch",
    "test/success_rate",
    "test/mean_Q",
    "test/episode",
    "train/success_rate",
    "train/episode",
    "stats_o/mean",
    "stats_o/std",
    "stats_g/mean",
    "stats_g/std",
]
EXTRA_KEYS = ["total/env_steps", "time/total", "loss/critic", "loss/actor", "time/rollout", "time/update", "time/eval"]


def test_progress_has_the_reference_keys_and_more(tmp_path, capsys):
    log = tmp_path / "run"
    assert cli(TINY + ["--num_env", "1", "--log_path", str(log)]) == 0
    rows = read_progress(log / "progress.csv")
    for key in REFERENCE_KEYS + EXTRA_KEYS:
        assert key in rows[0] and np.isfinite(rows[0][key]), key
    out = capsys.readouterr().out
    assert "| test/success_rate" in out  # the stdout table


def write_policy(path, env="FetchReach", hidden=16, layers=1):
    from her import envs, policy_file
    from her.config import build_config
    from her.parts import make_learner

    config = build_config({"env": env, "hidden": hidden, "layers": layers, "log_path": "unused"})
    dims = envs.env_dims(envs.make_env(config.env_id, 0))
    policy_file.save_policy(path, make_learner(config, dims).network_state(), config.to_dict(), dims, epoch=0)


def write_demos(path, env_id="FetchReach-v4", dims=(10, 3, 4), n=3, poison=False):
    dim_o, dim_g, dim_u = dims
    rng = np.random.default_rng(0)
    arrays = {
        "o": rng.normal(size=(n, 51, dim_o)),
        "ag": rng.normal(size=(n, 51, dim_g)),
        "g": rng.normal(size=(n, 50, dim_g)),
        "u": rng.uniform(-1, 1, (n, 50, dim_u)),
        "info_is_success": np.zeros((n, 50, 1)),
    }
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    if poison:
        arrays["o"][1, 7, 2] = np.nan
    np.savez(path, **arrays, env_id=np.array(env_id), format=np.array("her-tf2-demos"), version=np.array(1))


def bad_inputs(tmp: Path):
    """(arguments, start of the expected message) for every kind of bad input; files are made on demand."""
    (tmp / "taken").mkdir()
    (tmp / "taken" / "progress.csv").write_text("epoch\n0\n")
    (tmp / "a_file").write_text("")
    (tmp / "garbage.npz").write_bytes(b"\x00not a zip at all" * 10)
    write_policy(tmp / "reach.npz")
    write_policy(tmp / "push.npz", env="FetchPush")
    write_demos(tmp / "reach_demos.npz")
    write_demos(tmp / "push_demos.npz", env_id="FetchPush-v4", dims=(25, 3, 4))
    write_demos(tmp / "nan_demos.npz", poison=True)
    demo = ["--demo_file", str(tmp / "reach_demos.npz"), "--num_demo", "3"]
    return [
        (["--env", "FetchDance"], "unknown task 'FetchDance'"),
        (
            ["--env", "FetchPush-v1"],
            "FetchPush-v1 needs the retired mujoco-py bindings: use FetchPush-v4 (FetchPush "
            "for short), the version this project trains",
        ),
        (["--env", "FetchSlide-v2"], "FetchSlide-v2 is no longer provided by gymnasium-robotics: use FetchSlide-v4"),
        (["--env", "Pendulum-v1"], "Pendulum-v1 is not a goal env"),
        (["--n_batches", "0"], "n_batches must be >= 1, got 0"),
        (["--demo_file", ""], "--demo_file is an empty string (an unset shell variable?)"),
        (["--load_path", ""], "--load_path is an empty string"),
        (["--log_path", " "], "--log_path is an empty string"),
        (["--batchsize", "3"], "unknown configuration key --batchsize (did you mean --batch_size?)"),
        (["--batch_size", "big"], "batch_size must be an integer, got 'big'"),
        (["--batch_size", "0"], "batch_size must be >= 1, got 0"),
        (demo + ["--demo_batch_size", "1024"], "demo_batch_size must be in [1, batch_size=1024), got 1024"),
        (["--replay_k", "-1"], "replay_k must be >= 0, got -1"),
        (
            ["--replay_strategy", "sometimes"],
            "replay_strategy must be one of 'future', 'final', 'episode', 'none', got 'sometimes'",
        ),
        (["--polyak", "2"], "polyak must be in [0, 1], got 2.0"),
        (["--gamma", "1"], "gamma must be in (0, 1), got 1.0"),
        (["--noise_eps", "1.5"], "noise_eps must be in [0, 1], got 1.5"),
        (["--random_eps", "-0.1"], "random_eps must be in [0, 1], got -0.1"),
        (["--n_epochs", "3", "--num_timesteps", "1e5"], "give either --n_epochs or --num_timesteps, not both"),
        (["--num_timesteps", "10"], "num_timesteps=10 gives zero epochs"),
        (["--n_epochs", "0"], "n_epochs must be >= 1, got 0"),
        (["--log_path", str(tmp / "taken")], f"log folder {tmp / 'taken'} already holds a run"),
        (["--log_path", str(tmp / "a_file" / "run")], f"cannot write to log folder {tmp / 'a_file' / 'run'}"),
        (["--load_path", str(tmp / "missing.npz")], f"policy file {tmp / 'missing.npz'} does not exist"),
        (["--load_path", str(tmp / "garbage.npz")], f"{tmp / 'garbage.npz'} is not a readable policy file"),
        (["--load_path", str(tmp / "push.npz")], f"{tmp / 'push.npz'} was trained on FetchPush-v4, not FetchReach-v4"),
        (["--load_path", str(tmp / "reach.npz"), "--hidden", "32"], f"{tmp / 'reach.npz'} has networks of 1x16"),
        (["--demo_file", str(tmp / "missing.npz")], f"demo file {tmp / 'missing.npz'} does not exist"),
        (["--demo_file", str(tmp / "garbage.npz")], f"{tmp / 'garbage.npz'} is not a readable .npz archive"),
        (
            ["--demo_file", str(tmp / "push_demos.npz")],
            "holds demonstrations for FetchPush-v4, but this run is on FetchReach-v4",
        ),
        (demo[:2] + ["--num_demo", "5"], "holds 3 episodes but num_demo is 5: pass --num_demo 3"),
        (["--demo_file", str(tmp / "nan_demos.npz"), "--num_demo", "3"], "'o' holds NaN or infinite values"),
        (
            ["--num_demo", "0"],
            "num_demo must be >= 1, got 0: it is how many episodes of --demo_file to use (to "
            "train without demonstrations, drop --demo_file)",
        ),
        (
            ["--num_env", "2", "--rollout_batch_size", "3"],
            "--num_env and --rollout_batch_size are the same key with different values; give one",
        ),
        (["--log_path", str(tmp / ("a" * 300))], "is 300 bytes long, more than the 255 a file system allows"),
        (["--demo_file", str(tmp / ("d" * 256)) + ".npz"], "is 260 bytes long, more than the 255"),
        (["--log_path", str(tmp / "caf\udce9")], "is not valid UTF-8"),
        (["--buffer_size", "1e13"], "buffer_size=10000000000000 needs 791996.7 GiB for the replay buffer of each"),
        (["--env_kwargs", "max_episode_steps=10"], "env_kwargs max_episode_steps: the episode length T is the one"),
        (["--env_kwargs", "render_mode=human"], "env_kwargs render_mode: rendering is chosen by --play"),
    ]


def test_every_bad_input_gets_one_line_exit_2_and_no_files(tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cases = bad_inputs(inputs)
    before = sorted(p.name for p in inputs.rglob("*"))
    for args, message in cases:
        log_args = [] if "--log_path" in args else ["--log_path", str(tmp_path / "run")]
        code = cli(["--layers", "1", "--hidden", "16"] * ("--hidden" not in args) + args + log_args)
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert message in err, (args, err)
        assert not (tmp_path / "run").exists(), args
        assert sorted(p.name for p in inputs.rglob("*")) == before, args


def test_resume_with_an_empty_folder_name_is_refused(capsys):
    assert cli(["--resume", ""]) == 2
    assert capsys.readouterr().err == (
        "error: --resume is an empty string (an unset shell variable?): give the log folder of a run\n"
    )


def test_every_rank_uses_rank_0s_default_log_folder(monkeypatch):
    # Ranks name a default folder from their own clocks; one a second late must still write into rank 0's folder.
    import her.train
    from her import mpi

    class LateRank(mpi.SingleProcess):
        rank, size = 1, 2

        def bcast(self, obj):
            return "runs/FetchReach-20260101-000000"

    seen = []
    monkeypatch.setattr(mpi, "world", LateRank)
    monkeypatch.setattr(her.train, "train", lambda config, comm: seen.append(config.log_path))
    assert cli(["--env", "FetchReach"]) == 0
    assert seen == ["runs/FetchReach-20260101-000000"]


def test_a_missing_input_file_answers_before_tensorflow_is_imported(tmp_path, monkeypatch, capsys):
    from her import run

    def no_import():
        raise AssertionError("TensorFlow was imported before the paths were checked")

    monkeypatch.setattr(run, "import_tensorflow_quietly", no_import)
    for flag, message in [
        ("--demo_file", "demo file /nonexistent.npz does not exist"),
        ("--load_path", "policy file /nonexistent.npz does not exist"),
    ]:
        assert cli(["--env", "FetchReach", flag, "/nonexistent.npz", "--log_path", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tensorflows_start_up_lines_are_silenced_whatever_the_shells_log_level(tmp_path):
    # A demo file that exists but is no .npz fails only once TensorFlow is imported; level 0 is the most talkative.
    bad = tmp_path / "demos.npz"
    bad.write_text("not an archive")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "her.run",
            "--env",
            "FetchReach",
            "--demo_file",
            str(bad),
            "--log_path",
            str(tmp_path / "run"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {bad} is not a readable") and result.stderr.count("\n") == 1, result.stderr
