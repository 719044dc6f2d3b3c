"""The header a run starts with and the summary line it ends with (rank 0 prints them on stdout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from her.envs import task_name


def reaches(rate: float, level: float) -> bool:
    """Whether a logged success rate is at least ``level``.

    A logged rate is the mean of the MPI processes' rates, so 36 successes in 40 episodes on 2 of them log as
    (0.95 + 0.85) / 2 = 0.8999999999999999; the tolerance, far below one episode's share, counts that as 0.9.
    """
    return rate >= level - 1e-9


def header(config: Any, resumed_from: int = 0) -> str:
    """'FetchReach (FetchReach-v4): 2 MPI processes x 2 envs, 10 epochs[, demos from F]' and the log folder."""
    processes = f"{config.mpi_size} MPI process{'es' if config.mpi_size != 1 else ''}"
    envs = f"{config.rollout_batch_size} env{'s' if config.rollout_batch_size != 1 else ''}"
    epochs = f"{config.n_epochs} epoch{'s' if config.n_epochs != 1 else ''}"
    line = f"{task_name(config.env_id)} ({config.env_id}): {processes} x {envs}, {epochs}"
    if resumed_from:
        line += f" (resuming at epoch {resumed_from})"
    if config.demo_file:
        line += f", demos from {config.demo_file}"
    if config.recipe:
        line += f", recipe {config.recipe}"
    return f"{line}\nlog folder: {config.log_path}"


def summary(rows: Sequence[Mapping[str, float]], log_dir: str | Path, seconds: float) -> str:
    """'done: best test success 0.900 at epoch 7 (<log>/policy_best.npz), 2m 05s'."""
    took = f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    if not rows:
        return f"done: no epoch trained, {took}"
    best = rows[0]
    for row in rows:  # the last of equals: policy_best.npz is replaced on ties too
        if reaches(row["test/success_rate"], best["test/success_rate"]):
            best = row
    return (
        f"done: best test success {best['test/success_rate']:.3f} at epoch {int(best['epoch'])} "
        f"({Path(log_dir) / 'policy_best.npz'}), {took}"
    )
