"""The training loop: epochs of rollout-and-update cycles, then evaluation (reference §13).

``her.parts`` builds what the loop works on, and ``her.run_folder`` saves and restores it; what is left here
is the loop itself, its metrics and its stop rules, and the two entry points ``train`` and ``resume``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from her import checkpoints, mpi, parts, report
from her.callbacks import EpochCallbacks
from her.config import Config
from her.errors import Interrupted, ResumeError, Terminated, TrainingError, UserError
from her.learner import Batch, make_batch
from her.logger import Logger, make_writers
from her.replay_buffer import ReplayBuffer
from her.run_folder import Counters, RunFolder, check_log_dir, repair_published, resume_config


def progress_bar(iterable: Any, show: bool, desc: str) -> Any:
    """A tqdm bar on an interactive terminal only, so that redirected logs stay clean."""
    if not (show and sys.stderr.isatty()):
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] += time.perf_counter() - start


class Trainer:
    """One run on one rank: ``run()`` is the epoch / cycle / batch loop over the parts ``her.parts`` builds."""

    def __init__(
        self,
        config: Config,
        comm: mpi.SingleProcess | mpi.MPIComm,
        load_weights: bool = True,
        callbacks: EpochCallbacks | None = None,
    ):
        self.config = config
        self.comm = comm
        self.callbacks = callbacks  # her.learn's, called once an epoch is committed
        self.parts = parts.build(config, comm, load_weights)
        self.counters = Counters()
        self.folder = RunFolder(config, comm, self.parts, self.counters)
        self.logger: Logger | None = None  # rank 0 only

    def run(self, resume: bool = False) -> list[dict[str, float]]:
        c, k = self.config, self.counters
        assert c.n_epochs is not None, "build_config derives n_epochs"
        try:
            self.start(resume)
            for epoch in range(k.first_epoch, c.n_epochs):
                row = self.run_epoch(epoch)
                self.check_health(epoch, row)
                if self.logger is not None:
                    self.logger.log_epoch(row)
                stop = self.reached_stop(row["test/success_rate"])
                self.folder.save(epoch, row, self.logger.csv_text() if self.logger is not None else None)
                if self.logger is not None:
                    self.logger.committed(row)
                if self.callbacks is not None and self.callbacks.after_epoch(row):
                    stop = True
                if stop:
                    break
            if self.logger is not None:
                self.logger.print(report.summary(self.logger.rows, self.folder.log_dir, time.time() - k.start_time))
        except KeyboardInterrupt as e:
            raise self.interrupted(e) from None
        finally:
            if self.logger is not None:
                self.logger.close()
            self.folder.release()
        return self.logger.rows if self.logger is not None else []

    def run_epoch(self, epoch: int) -> dict[str, float]:
        c, p = self.config, self.parts
        timer = Timer()
        losses: dict[str, list[float]] = defaultdict(list)
        p.worker.clear_history()
        for _ in progress_bar(range(c.n_cycles), self.comm.rank == 0, f"epoch {epoch}"):
            with timer("rollout"):
                self.store(p.worker.generate_rollouts())
            with timer("update"):
                for key, values in p.learner.train_steps(self.sample_batches(c.n_batches)).items():
                    losses[key].extend(values.tolist())
                p.learner.update_target_net()
        p.evaluator.clear_history()
        with timer("eval"):
            for _ in range(c.n_test_rollouts):
                p.evaluator.generate_rollouts()
        return self.epoch_metrics(epoch, losses, timer)

    def start(self, resume: bool) -> None:
        """Claim the log folder, restore it on a resume, and write params.json, on every rank together."""
        self.folder.claim(resume)
        rows = self.folder.restore() if resume else []
        self.folder.write_params(resume)
        if self.comm.rank == 0:
            self.logger = Logger(rows=rows)
            self.logger.print(report.header(self.config, self.counters.first_epoch))
        self.folder.on_rank_0(self.open_writers)  # a backend that cannot start stops every rank

    def open_writers(self) -> None:
        assert self.logger is not None
        self.logger.writers = make_writers(self.config, self.folder.log_dir, self.logger.rows)

    def store(self, episode: dict[str, np.ndarray]) -> None:
        """Store new episodes and update the normaliser from HER-sampled transitions of them (reference §8)."""
        p = self.parts
        p.buffer.store_episode(episode, p.sample_rng)
        n_transitions = episode["u"].shape[0] * episode["u"].shape[1]
        p.learner.update_normalizer(p.sampler(episode, n_transitions, p.sample_rng))

    def sample_batches(self, n_steps: int) -> Batch:
        """Batches for ``n_steps`` gradient steps, ``o: (n_steps, batch_size, dim_o)``, sampled in one pass.

        Each step's batch holds ``batch_size - demo_batch_size`` of the agent's transitions, then (with demos)
        ``demo_batch_size`` demo transitions, as if sampled one step at a time.
        """
        c, p = self.config, self.parts

        def stacked(buffer: ReplayBuffer, per_step: int) -> dict[str, np.ndarray]:
            flat = buffer.sample(n_steps * per_step, p.sample_rng)
            return {key: value.reshape(n_steps, per_step, *value.shape[1:]) for key, value in flat.items()}

        if p.demo_buffer is None:
            return make_batch(stacked(p.buffer, c.batch_size))
        return make_batch(
            stacked(p.buffer, c.batch_size - c.demo_batch_size), stacked(p.demo_buffer, c.demo_batch_size)
        )

    def local_metrics(self, losses: dict[str, list[float]], timer: Timer) -> dict[str, float]:
        """This MPI process's figures for the epoch, before pooling."""
        p = self.parts
        local = {
            **p.evaluator.logs("test"),
            **p.worker.logs("train"),
            "stats_o/mean": float(np.mean(p.learner.o_stats.mean)),
            "stats_o/std": float(np.mean(p.learner.o_stats.std)),
            "stats_g/mean": float(np.mean(p.learner.g_stats.mean)),
            "stats_g/std": float(np.mean(p.learner.g_stats.std)),
        }
        # Whatever the learner's steps returned, under the columns it names.
        for key in {**dict.fromkeys(p.learner.metric_columns), **losses}:
            local[self.metric_column(key)] = float(np.mean(losses[key])) if losses.get(key) else float("nan")
        for name in ("rollout", "update", "eval"):
            local[f"time/{name}"] = timer.seconds[name]
        return local

    def metric_column(self, key: str) -> str:
        return self.parts.learner.metric_columns.get(key, key)

    def epoch_metrics(self, epoch: int, losses: dict[str, list[float]], timer: Timer) -> dict[str, float]:
        c = self.config
        local = self.local_metrics(losses, timer)
        # Every logged value is the mean over MPI processes (reference §13).
        pooled = self.comm.allreduce_mean(np.array(list(local.values()), dtype=np.float64))
        row: dict[str, float] = {"epoch": epoch}
        row.update(zip(local, (float(v) for v in pooled)))
        steps_per_epoch = c.n_cycles * c.rollout_batch_size * c.T
        row["total/env_steps"] = (epoch + 1) * steps_per_epoch * self.comm.size
        row["total/updates"] = (epoch + 1) * c.n_cycles * c.n_batches
        row["time/total"] = self.counters.elapsed()
        return row

    def check_health(self, epoch: int, row: dict[str, float]) -> None:
        learner = self.parts.learner
        bad = [k for k in map(self.metric_column, self.parts.learner.metric_columns) if not np.isfinite(row[k])]
        if bad or not learner.all_finite():
            what = ", ".join(bad) if bad else "network parameters"
            raise TrainingError(f"epoch {epoch}: {what} became NaN or infinite; the last good policy is kept")
        if self.comm.size > 1:
            digest = hashlib.sha256(learner.flat_params().tobytes()).hexdigest()
            if len(set(self.comm.allgather(digest))) > 1:
                raise TrainingError(f"epoch {epoch}: parameters differ across MPI processes; the job cannot continue")

    def reached_stop(self, success: float) -> bool:
        """Whether the last stop_patience epochs all held stop_success_rate (row values are equal on all ranks)."""
        k, target = self.counters, self.config.stop_success_rate
        k.success_streak = k.success_streak + 1 if target is not None and report.reaches(success, target) else 0
        return target is not None and k.success_streak >= self.config.stop_patience

    def interrupted(self, signal: KeyboardInterrupt) -> Interrupted:
        what = "SIGTERM" if isinstance(signal, Terminated) else "Ctrl-C"
        # Read from disk: a signal that lands between a checkpoint's commit (a rename) and the bookkeeping after it
        # must name the checkpoint that --resume will take, not the one before.
        log_dir = self.folder.log_dir
        found = checkpoints.latest(log_dir)
        if found is None:
            where = "no epoch was complete; start the run again"
        else:
            epoch, last = found
            where = f"the last complete epoch is {epoch} ({last}); continue with --resume {log_dir}"
        return Interrupted(f"stopped by {what}: {where}", 143 if isinstance(signal, Terminated) else 130)


def train(
    config: Config, comm: mpi.SingleProcess | mpi.MPIComm | None = None, callbacks: EpochCallbacks | None = None
) -> list[dict[str, float]]:
    """Train as ``config`` says; returns the rows written to progress.csv (empty on ranks other than 0).

    Every input (log folder, --load_path, --demo_file) is checked before the log folder is created. ``callbacks``
    (``her.learn``'s) are called after every committed epoch and may stop the run.
    """
    comm = comm if comm is not None else mpi.world()
    parts.configure_threads(comm.local_size, config.tf_threads)
    # Only rank 0 writes the log folder, so only rank 0 checks it; its verdict stops every rank.
    mpi.on_every_rank(comm, lambda: check_log_dir(config) if comm.rank == 0 else None, (UserError,))
    return Trainer(config, comm, callbacks=callbacks).run()


def resume(
    log_dir: str | Path,
    n_epochs: int | None = None,
    comm: mpi.SingleProcess | mpi.MPIComm | None = None,
    demo_file: str | None = None,
    load_path: str | None = None,
    gym_packages: str = "",
    callbacks: EpochCallbacks | None = None,
) -> list[dict[str, float]]:
    """Continue the run in ``log_dir`` from its newest committed checkpoint (see RunFolder.restore);
    ``gym_packages`` names the modules its env needs, which params.json alone never imports."""
    comm = comm if comm is not None else mpi.world()

    def check() -> Config:
        if comm.rank == 0:
            checkpoints.RunLock(Path(log_dir)).check_free()
        config = resume_config(log_dir, n_epochs, comm.size, demo_file, load_path, gym_packages)
        found = checkpoints.latest(log_dir)
        assert config.n_epochs is not None, "resume_config derives n_epochs"
        if found is not None and found[0] + 1 >= config.n_epochs:
            repaired = comm.rank == 0 and repair_published(Path(log_dir), config)
            note = (
                " (a kill had left its progress.csv and policies behind its last checkpoint: they are restored)"
                if repaired
                else ""
            )
            raise ResumeError(
                f"{log_dir} already finished its {config.n_epochs} epochs{note}: pass --n_epochs N to train it further"
            )
        if found is None and (Path(log_dir) / "resume").is_dir():
            raise ResumeError(
                f"{log_dir} was written by an older version of this project, whose resume files "
                "cannot be continued: start a new run"
            )
        return config

    config = mpi.on_every_rank(comm, check, (UserError,))
    parts.configure_threads(comm.local_size, config.tf_threads)
    # The checkpoint holds the weights: --load_path's file is read only if no epoch was complete.
    restoring = comm.bcast(checkpoints.latest(log_dir) is not None)
    return Trainer(config, comm, load_weights=not restoring, callbacks=callbacks).run(resume=True)
