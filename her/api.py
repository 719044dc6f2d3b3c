"""Training from Python: ``her.learn`` and ``her.resume`` run what ``python -m her.run`` runs, as function calls.

The same configuration layers (defaults -> task overrides -> demo preset -> recipe -> recorded config -> keys
given), the same validation and the same log folder as the command line; a bad key or value raises the error
whose message is the command line's ``error:`` line, before anything is written. Under ``mpirun -np N python
script.py`` every rank calls ``learn`` and they train together, as ``mpirun -np N python -m her.run`` does.

TensorFlow is imported by the first call, not by importing this module.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from her import config as cfg
from her import mpi
from her.callbacks import Callbacks, EpochCallbacks
from her.errors import Interrupted, TrainingError, UserError

if TYPE_CHECKING:
    from her.policy import Policy

__all__ = ["Run", "learn", "resume"]

PathLike = str | os.PathLike


class Run:
    """What ``learn`` and ``resume`` return, the same on every MPI rank.

    ``config``: the effective ``her.config.Config`` (params.json's). ``rows``: progress.csv's rows, one dict per
    epoch (of every session, for a resumed run). ``log_dir``: the log folder, a ``Path``. ``policy`` and
    ``best_policy``: its policies as ``her.policy.Policy`` (numpy only), read from the folder when first asked for.
    """

    def __init__(self, config: cfg.Config, rows: list[dict[str, float]]):
        assert config.log_path is not None, "build_config derives log_path"
        self.config = config
        self.rows = rows
        self.log_dir = Path(config.log_path)

    @cached_property
    def policy(self) -> Policy:
        """The policy as training left it (``policy_latest.npz``), as the reference's ``learn`` returned it."""
        from her.policy import load

        return load(self.log_dir / "policy_latest.npz")

    @cached_property
    def best_policy(self) -> Policy:
        """The policy of the best test success rate (``policy_best.npz``, what ``her.policy.load(log_dir)`` gives)."""
        from her.policy import load

        return load(self.log_dir / "policy_best.npz")

    def resume(self, n_epochs: int | None = None, callback: Callbacks = None) -> Run:
        """Train this run on to ``n_epochs`` epochs in all (``her.resume(run.log_dir, ...)``)."""
        return resume(self.log_dir, n_epochs=n_epochs, callback=callback)

    def __repr__(self) -> str:
        last = f", test success {self.rows[-1]['test/success_rate']:.3f}" if self.rows else ""
        return f"Run({self.config.env_id}, {len(self.rows)} epochs{last}, {self.log_dir})"


def learn(
    env: str | None = None,
    *,
    total_timesteps: float | None = None,
    n_epochs: int | None = None,
    seed: int | None = None,
    demo_file: PathLike | None = None,
    load_path: PathLike | None = None,
    log_path: PathLike | None = None,
    config: PathLike | None = None,
    callback: Callbacks = None,
    **params: Any,
) -> Run:
    """Train as ``python -m her.run --env ENV --key value ...`` does; returns the finished ``Run``.

    ``env``: a task (``FetchPush``) or a gymnasium id. ``total_timesteps`` (the reference's name for
    ``num_timesteps``, env steps per MPI process) or ``n_epochs``. ``config``: a recorded params.json to start from,
    as ``--config``. Every configuration key can be given as a keyword (``replay_k=8``, ``num_env=2``); an
    argument left at None takes the configuration's default. ``callback``: a function of each committed epoch's
    row, or a list of them, that returns True to stop the run (``her.callbacks``).

    Raises ``her.config.ConfigError`` (a ``her.errors.UserError``) for bad input and ``her.errors.TrainingError``
    when training cannot go on, each with the command line's one-line message; an exception of a callback is
    raised as it is. Two calls in one process train independently: each equals a fresh process of its seed.
    """
    named = {
        "env": env,
        "n_epochs": n_epochs,
        "seed": seed,
        "demo_file": demo_file,
        "load_path": load_path,
        "log_path": log_path,
    }
    user = {**{key: value for key, value in named.items() if value is not None}, **params}
    if total_timesteps is not None:
        if "num_timesteps" in params:
            raise cfg.ConfigError("total_timesteps and num_timesteps are the same key with different names; give one")
        user["num_timesteps"] = total_timesteps
    comm = mpi.world()
    callbacks = EpochCallbacks(callback, comm)
    recorded = cfg.read_recorded(config) if config is not None else None
    built = cfg.build_config(user, mpi_size=comm.size, recorded=recorded)
    # A default log folder is named from each rank's clock, and ranks can straddle a second: all use rank 0's.
    built = dataclasses.replace(built, log_path=comm.bcast(built.log_path))
    from her.run import check_paths, import_tensorflow_quietly

    check_paths(built, comm)
    import_tensorflow_quietly()  # only once the input is known to be valid
    from her.train import train

    rows = _on_every_rank(comm, callbacks, lambda: train(built, comm, callbacks))
    return Run(built, rows)


def resume(
    log_path: PathLike,
    *,
    n_epochs: int | None = None,
    demo_file: PathLike | None = None,
    load_path: PathLike | None = None,
    callback: Callbacks = None,
) -> Run:
    """Continue the run in ``log_path`` from its last committed epoch, as ``python -m her.run --resume`` does.

    ``n_epochs`` trains it longer (epochs in all, not more epochs); ``demo_file`` and ``load_path`` name files
    that moved since. The returned ``Run`` holds every epoch's row, the earlier sessions' too.
    """
    if not os.fspath(log_path).strip():
        raise cfg.ConfigError("--resume is an empty string (an unset shell variable?): give the log folder of a run")
    epochs = cfg.coerce("n_epochs", n_epochs) if n_epochs is not None else None
    demos = cfg.coerce("demo_file", demo_file) if demo_file is not None else None
    policy = cfg.coerce("load_path", load_path) if load_path is not None else None
    log_dir = Path(log_path)
    comm = mpi.world()
    callbacks = EpochCallbacks(callback, comm)
    from her.run import import_tensorflow_quietly
    from her.run_folder import resume_config

    import_tensorflow_quietly()
    from her import train

    rows = _on_every_rank(
        comm,
        callbacks,
        lambda: train.resume(log_dir, epochs, comm, demo_file=demos, load_path=policy, callbacks=callbacks),
    )
    return Run(resume_config(log_dir, epochs, comm.size, demos, policy), rows)


def _on_every_rank(
    comm: mpi.SingleProcess | mpi.MPIComm, callbacks: EpochCallbacks, training: Callable[[], list[dict[str, float]]]
) -> list[dict[str, float]]:
    """Rank 0's rows on every rank; a failure of one rank alone stops the whole job, as the command line does."""
    try:
        rows = training()
    except (UserError, TrainingError):
        raise  # raised on every rank together
    except Interrupted as e:
        if comm.size > 1:  # the ranks heard of the signal at different moments: some may wait in a collective
            mpi.fail_job(comm, e, e.exit_code)
        raise
    except Exception as e:
        if e is not callbacks.error:  # a callback's error was raised on every rank; anything else on one
            mpi.fail_job(comm, e)
        raise
    return comm.bcast(rows)
