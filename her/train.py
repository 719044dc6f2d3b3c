"""Builds every part from the configuration and runs the training loop (reference §13).

This is the only module besides the CLI that reads a ``Config``; it hands each part explicit arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from experiment.config import Config, ConfigError, config_from_dict
from her import atomic, checkpoint, checkpoints, envs, mpi, report, versions
from her.ddpg import DDPG, Batch, make_batch
from her.demo import EPISODE_KEYS, load_demos
from her.errors import Interrupted, ResumeError, Terminated, TrainingError, UserError, WriteError
from her.her_sampler import sample_her_transitions
from her.logger import Logger, TensorBoardWriter, read_progress, write_params
from her.replay_buffer import ReplayBuffer, episode_shapes
from her.rollout import RolloutWorker
from her.starts import DemoStates

# Bad input: one line on stderr and exit code 2 (her.run), raised on every rank together (mpi.on_every_rank).
USER_ERRORS = (UserError,)


def thread_count(workers_on_host: int, host_cores: int, usable_cores: int) -> int:
    """TensorFlow threads for one worker: its share of the host's cores, but no more than it may run on.

    ``mpirun`` without ``--oversubscribe`` pins each rank to one core, even ``-np 1`` on a bigger machine.
    """
    return max(1, min(host_cores // workers_on_host, usable_cores))


def configure_threads(workers_on_host: int) -> None:
    """Share this host's cores between the MPI workers on it (the reference used one thread per worker)."""
    import tensorflow as tf

    host_cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else host_cores
    threads = thread_count(workers_on_host, host_cores, usable)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already started (a second train() in one process): keep its settings.


def make_policy(config: Config, dims: dict[str, int], allreduce: Any = None) -> DDPG:
    return DDPG(
        dims,
        hidden=config.hidden,
        layers=config.layers,
        max_u=config.max_u,
        Q_lr=config.Q_lr,
        pi_lr=config.pi_lr,
        polyak=config.polyak,
        action_l2=config.action_l2,
        clip_obs=config.clip_obs,
        norm_eps=config.norm_eps,
        norm_clip=config.norm_clip,
        gamma=config.gamma,
        clip_return=config.clip_return_value,
        bc_loss=config.bc_loss,
        q_filter=config.q_filter,
        prm_loss_weight=config.prm_loss_weight,
        aux_loss_weight=config.aux_loss_weight,
        seed=config.seed,
        allreduce=allreduce,
    )


def holds_run(log_dir: Path) -> bool:
    """Whether a folder holds a run that finished an epoch (a folder whose run died in epoch 0 does not)."""
    return checkpoints.latest(log_dir) is not None or (log_dir / "progress.csv").exists()


def check_log_dir(config: Config) -> None:
    """Refuse a log folder that already holds a run or cannot be written, without creating anything."""
    log_dir = Path(config.log_path)
    checkpoints.RunLock(log_dir).check_free()
    if holds_run(log_dir):
        raise ConfigError(f"log folder {log_dir} already holds a run: choose another --log_path, or --resume it")
    existing = next(p for p in [log_dir, *log_dir.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to log folder {log_dir} ({existing} is not a writable folder): "
                          "choose another --log_path")


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
    """Owns the parts of one training run; ``run()`` is the epoch / cycle / batch loop."""

    def __init__(self, config: Config, comm: mpi.SingleProcess | mpi.MPIComm):
        self.config = config
        self.comm = comm
        rank = comm.rank
        # Decision D8: rank r draws everything from seed + 1_000_000 * r.
        seeds = np.random.SeedSequence(config.seed + 1_000_000 * rank)
        explore_seq, sample_seq, train_env_seq, eval_env_seq = seeds.spawn(4)
        self.explore_rng = np.random.default_rng(explore_seq)
        self.sample_rng = np.random.default_rng(sample_seq)

        T, rbs = config.T, config.rollout_batch_size
        make = partial(envs.make_env, config.env_id, env_kwargs=config.make_kwargs)
        try:
            self.envs = [make(int(s)) for s in train_env_seq.generate_state(rbs)]
            self.eval_envs = [make(int(s)) for s in eval_env_seq.generate_state(rbs)]
            self.dims = envs.env_dims(make(seed=0))
        except ValueError as e:  # env_kwargs the env does not take, or the goal-env contract check
            raise ConfigError(str(e)) from None

        reward_fn = self.envs[0].unwrapped.compute_reward
        self.sampler = partial(sample_her_transitions, future_p=config.future_p, reward_fn=reward_fn,
                               strategy=config.replay_strategy)
        self.buffer = ReplayBuffer(episode_shapes(self.dims, T), config.buffer_size // T, self.sampler)

        # Each rank reads its input files itself; a bad one stops every rank before the first collective.
        loaded, demos = mpi.on_every_rank(comm, self.read_inputs, USER_ERRORS)
        self.demo_digest = demo_digest(demos) if demos is not None else None  # states included, if loaded
        starts = None
        if demos is not None and config.demo_reset_p > 0:
            starts = DemoStates(demos, config.demo_reset_p, self.envs)
            demos = {key: demos[key] for key in EPISODE_KEYS}  # the states restore envs; the buffers never see them
        allreduce = comm.allreduce_mean if comm.size > 1 else None
        self.policy = make_policy(config, self.dims, allreduce)
        if loaded is not None:
            self.policy.load_network_state(loaded)
        # Every worker starts from rank 0's parameters.
        if comm.size > 1:
            self.policy.load_network_state(comm.bcast(self.policy.network_state()))

        self.worker = RolloutWorker(
            self.envs, self.policy, self.dims, T, rng=self.explore_rng,
            noise_eps=config.noise_eps, random_eps=config.random_eps, starts=starts,
        )
        self.evaluator = RolloutWorker(
            self.eval_envs, self.policy, self.dims, T, exploit=True,
            use_target_net=config.test_with_polyak, compute_Q=True,
        )
        self.demo_buffer = self.fill_demo_buffer(demos) if demos is not None else None
        self.log_dir = Path(config.log_path)
        self.logger: Logger | None = None
        self.tensorboard: TensorBoardWriter | None = None
        self.best_success = -np.inf
        self.success_streak = 0  # epochs in a row at stop_success_rate
        self.last_checkpoint: Path | None = None
        self.lock = checkpoints.RunLock(self.log_dir)
        self.first_epoch = 0
        self.elapsed_before = 0.0  # wall seconds of earlier sessions of a resumed run
        self.start_time = time.time()

    def read_inputs(self) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
        """The weights of --load_path and the episodes of --demo_file (None where not given), checked."""
        c = self.config
        loaded = demos = None
        if c.load_path:
            loaded, meta = checkpoint.read_policy(c.load_path)
            checkpoint.check_compatible(meta, c.load_path, env_id=c.env_id, dims=self.dims,
                                        hidden=c.hidden, layers=c.layers)
        if c.demo_file:
            demos = load_demos(c.demo_file, env_id=c.env_id, dims=self.dims, T=c.T, num_demo=c.num_demo,
                               allow_legacy=c.demo_legacy, need_states=c.demo_reset_p > 0)
        return loaded, demos

    def fill_demo_buffer(self, demos: dict[str, np.ndarray]) -> ReplayBuffer:
        """Fill the demo buffer once (D7) and initialise the normaliser from the demos (D6)."""
        c = self.config
        sampler = self.sampler
        if not c.demo_relabel:
            sampler = partial(sample_her_transitions, future_p=0.0, reward_fn=self.envs[0].unwrapped.compute_reward)
        demo_buffer = ReplayBuffer(episode_shapes(self.dims, c.T), c.num_demo, sampler)
        demo_buffer.store_episode(demos, self.sample_rng)
        for e in range(c.num_demo):  # once per demo episode, T HER-sampled transitions each, as the reference
            episode = {key: value[e:e + 1] for key, value in demos.items()}
            self.policy.update_normalizer(self.sampler(episode, c.T, self.sample_rng))
        return demo_buffer

    # ---- the loop ----

    def store(self, episode: dict[str, np.ndarray]) -> None:
        """Store new episodes and update the normaliser from HER-sampled transitions of them (reference §8)."""
        self.buffer.store_episode(episode, self.sample_rng)
        n_transitions = episode["u"].shape[0] * episode["u"].shape[1]
        self.policy.update_normalizer(self.sampler(episode, n_transitions, self.sample_rng))

    def sample_batches(self, n_steps: int) -> Batch:
        """Batches for ``n_steps`` gradient steps, ``o: (n_steps, batch_size, dim_o)``, sampled in one pass.

        Each step's batch holds ``batch_size - demo_batch_size`` of the agent's transitions, then (with demos)
        ``demo_batch_size`` demo transitions, as if sampled one step at a time.
        """
        c = self.config

        def stacked(buffer: ReplayBuffer, per_step: int) -> dict[str, np.ndarray]:
            flat = buffer.sample(n_steps * per_step, self.sample_rng)
            return {key: value.reshape(n_steps, per_step, *value.shape[1:]) for key, value in flat.items()}

        if self.demo_buffer is None:
            return make_batch(stacked(self.buffer, c.batch_size))
        return make_batch(stacked(self.buffer, c.batch_size - c.demo_batch_size),
                          stacked(self.demo_buffer, c.demo_batch_size))

    def run_epoch(self, epoch: int) -> dict[str, float]:
        c = self.config
        timer = Timer()
        losses: dict[str, list[float]] = defaultdict(list)
        self.worker.clear_history()
        for _ in progress_bar(range(c.n_cycles), self.comm.rank == 0, f"epoch {epoch}"):
            with timer("rollout"):
                self.store(self.worker.generate_rollouts())
            with timer("update"):
                for key, values in self.policy.train_steps(self.sample_batches(c.n_batches)).items():
                    losses[key].extend(values.tolist())
                self.policy.update_target_net()
        self.evaluator.clear_history()
        with timer("eval"):
            for _ in range(c.n_test_rollouts):
                self.evaluator.generate_rollouts()
        return self.epoch_metrics(epoch, losses, timer)

    def local_metrics(self, losses: dict[str, list[float]], timer: Timer) -> dict[str, float]:
        """This worker's figures for the epoch, before pooling."""
        local = {
            **self.evaluator.logs("test"),
            **self.worker.logs("train"),
            "stats_o/mean": float(np.mean(self.policy.o_stats.mean)),
            "stats_o/std": float(np.mean(self.policy.o_stats.std)),
            "stats_g/mean": float(np.mean(self.policy.g_stats.mean)),
            "stats_g/std": float(np.mean(self.policy.g_stats.std)),
            "loss/critic": float(np.mean(losses["critic_loss"])) if losses else float("nan"),
            "loss/actor": float(np.mean(losses["actor_loss"])) if losses else float("nan"),
        }
        if self.config.bc_loss:
            local["loss/bc"] = float(np.mean(losses["bc_loss"])) if losses else float("nan")
            local["demo/q_filter_pass"] = float(np.mean(losses["q_filter_pass"])) if losses else float("nan")
        for name in ("rollout", "update", "eval"):
            local[f"time/{name}"] = timer.seconds[name]
        return local

    def epoch_metrics(self, epoch: int, losses: dict[str, list[float]], timer: Timer) -> dict[str, float]:
        c = self.config
        local = self.local_metrics(losses, timer)
        # Every logged value is the mean over workers (reference §13).
        pooled = self.comm.allreduce_mean(np.array(list(local.values()), dtype=np.float64))
        row: dict[str, float] = {"epoch": epoch}
        row.update(zip(local, (float(v) for v in pooled)))
        steps_per_epoch = c.n_cycles * c.rollout_batch_size * c.T
        row["total/env_steps"] = (epoch + 1) * steps_per_epoch * self.comm.size
        row["total/updates"] = (epoch + 1) * c.n_cycles * c.n_batches
        row["time/total"] = self.elapsed_before + time.time() - self.start_time
        return row

    def check_health(self, epoch: int, row: dict[str, float]) -> None:
        bad = [k for k in ("loss/critic", "loss/actor") if not np.isfinite(row[k])]
        if bad or not self.policy.all_finite():
            what = ", ".join(bad) if bad else "network parameters"
            raise TrainingError(f"epoch {epoch}: {what} became NaN or infinite; the last good policy is kept")
        if self.comm.size > 1:
            digest = hashlib.sha256(self.policy.flat_params().tobytes()).hexdigest()
            if len(set(self.comm.allgather(digest))) > 1:
                raise TrainingError(f"epoch {epoch}: parameters differ across MPI workers; the job cannot continue")

    # ---- checkpoints (her.checkpoints: committed as a whole, the last two kept) ----

    def guarded(self, fn: Any) -> Any:
        """``fn()`` on every rank; a failed write (or bad input) on any rank is raised on all of them."""
        def run() -> Any:
            try:
                return fn()
            except OSError as e:
                raise self.write_error(e) from None
        return mpi.on_every_rank(self.comm, run, (WriteError, *USER_ERRORS))

    def write_error(self, e: OSError) -> WriteError:
        what = e.filename or self.log_dir
        kept = (f"the last complete checkpoint ({self.last_checkpoint}) is kept; once the problem is fixed, "
                f"continue with --resume {self.log_dir}") if self.last_checkpoint else (
                "no epoch was complete yet: start the run again once the problem is fixed")
        return WriteError(f"cannot write {what} ({e.strerror or e}): {kept}")

    def save(self, epoch: int, row: dict[str, float]) -> None:
        """Every rank's state and buffer, the log and the policies as one checkpoint, committed by rank 0."""
        c = self.config
        rank = self.comm.rank
        success = row["test/success_rate"]
        improved = success >= self.best_success
        self.best_success = max(self.best_success, success)
        save_buffer = c.buffer_save_interval > 0 and (
            (epoch + 1) % c.buffer_save_interval == 0 or epoch + 1 == c.n_epochs)
        previous = self.last_checkpoint
        staging = checkpoints.partial_dir(self.log_dir, epoch)
        network_state = self.policy.network_state()

        def write() -> None:
            arrays, meta = self.training_state(epoch, network_state)
            checkpoints.save_state(staging / f"state_rank{rank}.npz", arrays, meta)
            buffer_file = f"buffer_rank{rank}.npz"
            if save_buffer:
                checkpoints.save_buffer(staging / buffer_file, self.buffer.state_dict(), epoch)
            elif previous is not None and (previous / buffer_file).exists():
                checkpoints.link_or_copy(previous / buffer_file, staging / buffer_file)
            if rank == 0:
                atomic.write_text(staging / "progress.csv", self.logger.csv_text())
                save_policy = partial(checkpoint.save_policy, network_state=network_state, config=c.to_dict(),
                                         dims=self.dims, epoch=epoch, test_success_rate=success)
                save_policy(staging / "policy_latest.npz")
                if improved or previous is None:
                    save_policy(staging / "policy_best.npz")
                else:
                    checkpoints.link_or_copy(previous / "policy_best.npz", staging / "policy_best.npz")

        try:
            self.guarded(lambda: checkpoints.begin(self.log_dir, epoch) if rank == 0 else None)
            self.guarded(write)  # every rank has written its files before rank 0 commits
            self.guarded(lambda: checkpoints.commit(self.log_dir, epoch) if rank == 0 else None)
        except WriteError:
            if rank == 0:  # give back the space of the half-written checkpoint
                shutil.rmtree(staging, ignore_errors=True)
            raise
        self.last_checkpoint = self.log_dir / checkpoints.FOLDER / checkpoints.name(epoch)
        self.guarded(lambda: self.publish(epoch, row) if rank == 0 else None)

    def publish(self, epoch: int, row: dict[str, float] | None = None) -> None:
        """Rank 0: the top-level progress.csv and policies become the newest checkpoint's (hard links)."""
        final = self.last_checkpoint
        for name in ("progress.csv", "policy_latest.npz", "policy_best.npz"):
            checkpoints.link_or_copy(final / name, self.log_dir / name)
        interval = self.config.policy_save_interval
        if interval > 0 and epoch % interval == 0:
            checkpoints.link_or_copy(final / "policy_latest.npz", self.log_dir / f"policy_{epoch}.npz")
        if self.tensorboard is not None and row is not None:
            self.tensorboard.write(row, step=epoch)

    def training_state(self, epoch: int, network_state: dict[str, np.ndarray] | None = None
                       ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything but the replay buffer that the next epoch depends on."""
        network_state = self.policy.network_state() if network_state is None else network_state
        arrays = {**network_state, **{f"opt/{k}": v for k, v in self.policy.optimizer_state().items()}}
        meta = {
            "epoch": epoch,
            "env_id": self.config.env_id,
            "dims": self.dims,
            "demo_digest": self.demo_digest,
            "best_success": self.best_success,
            "success_streak": self.success_streak,
            "elapsed": self.elapsed_before + time.time() - self.start_time,
            "rng/explore": self.explore_rng.bit_generator.state,
            "rng/sample": self.sample_rng.bit_generator.state,
            "rng/envs": [env.unwrapped.np_random.bit_generator.state for env in self.envs],
            "rng/eval_envs": [env.unwrapped.np_random.bit_generator.state for env in self.eval_envs],
            "episodes": [self.worker.n_episodes, self.evaluator.n_episodes],
            "mpi_size": self.comm.size,
        }
        return arrays, meta

    def restore(self) -> list[dict[str, float]]:
        """Continue from the newest committed checkpoint; returns its progress rows (rank 0), or [] if none."""
        found = self.comm.bcast(checkpoints.latest(self.log_dir))  # rank 0's view of the shared folder
        if found is None:
            if self.comm.rank == 0:
                print(f"note: no epoch of {self.log_dir} was complete: starting it from epoch 0", file=sys.stderr)
            return []
        epoch, folder = found
        arrays, meta, buffer, buffer_epoch = mpi.on_every_rank(
            self.comm, lambda: self.read_checkpoint(folder), USER_ERRORS)
        self.policy.load_network_state(arrays)
        self.policy.load_optimizer_state({k[4:]: v for k, v in arrays.items() if k.startswith("opt/")})
        self.explore_rng.bit_generator.state = meta["rng/explore"]
        self.sample_rng.bit_generator.state = meta["rng/sample"]
        for env, state in zip(self.envs, meta["rng/envs"]):
            env.unwrapped.np_random.bit_generator.state = state
        for env, state in zip(self.eval_envs, meta["rng/eval_envs"]):
            env.unwrapped.np_random.bit_generator.state = state
        self.worker.n_episodes, self.evaluator.n_episodes = meta["episodes"]
        self.best_success = meta["best_success"]
        self.success_streak = meta.get("success_streak", 0)
        self.elapsed_before = meta["elapsed"]
        self.first_epoch = epoch + 1
        self.last_checkpoint = folder
        if buffer is not None:
            self.buffer.load_state_dict(buffer)
        if self.comm.rank != 0:
            return []
        if buffer_epoch != epoch:
            saved = "no replay buffer was saved" if buffer_epoch is None else f"the replay buffer is from epoch {buffer_epoch}"
            print(f"note: resuming after epoch {epoch}, but {saved}; --buffer_save_interval 1 makes a resume "
                  "exact", file=sys.stderr)
        try:
            return read_progress(folder / "progress.csv")
        except (OSError, ValueError, TypeError) as e:
            raise ResumeError(f"{folder / 'progress.csv'} is damaged ({e}): the run cannot be resumed") from None

    def read_checkpoint(self, folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any],
                                                     dict[str, np.ndarray] | None, int | None]:
        """This rank's state and (if one was saved) replay buffer from a checkpoint, checked against the run."""
        rank = self.comm.rank
        state_path = folder / f"state_rank{rank}.npz"
        if not state_path.exists():
            raise ResumeError(f"{folder} holds no state for MPI rank {rank}: it was trained on fewer workers; "
                              "resume it with as many as it was trained on (see its params.json, mpi_size)")
        arrays, meta = checkpoints.read_state(state_path)
        if meta.get("mpi_size") != self.comm.size:
            raise ResumeError(f"{self.log_dir} was trained on {meta.get('mpi_size')} MPI workers: resume it with "
                              f"mpirun -np {meta.get('mpi_size')}")
        if meta.get("env_id") != self.config.env_id or meta.get("dims") != self.dims:
            raise ResumeError(f"{state_path} is from a run on {meta.get('env_id')}, but params.json says "
                              f"{self.config.env_id}: the folder's files do not belong together")
        if meta.get("demo_digest") != self.demo_digest:
            raise ResumeError(f"--demo_file {self.config.demo_file} holds other demonstrations than the run was "
                              "trained with: pass the file it was trained with (--resume DIR --demo_file FILE)")
        buffer_path = folder / f"buffer_rank{rank}.npz"
        if not buffer_path.exists():
            return arrays, meta, None, None
        buffer, buffer_epoch = checkpoints.read_buffer(buffer_path)
        expected = {f"buffers/{k}": v.shape[1:] for k, v in self.buffer.buffers.items()}
        if {k: buffer[k].shape[1:] for k in expected if k in buffer} != expected:
            raise ResumeError(f"{buffer_path} does not fit this run's replay buffer: the folder's files do not "
                              "belong together")
        return arrays, meta, buffer, buffer_epoch

    def reached_stop(self, success: float) -> bool:
        """Whether the last stop_patience epochs all held stop_success_rate (row values are equal on all ranks)."""
        target = self.config.stop_success_rate
        self.success_streak = self.success_streak + 1 if target is not None and success >= target else 0
        return target is not None and self.success_streak >= self.config.stop_patience

    def start(self, resume: bool) -> None:
        """Lock the log folder (rank 0), restore or check it, and write params.json, on every rank together."""
        lock = self.lock

        def claim() -> None:
            if self.comm.rank != 0:
                return
            lock.acquire()
            if not resume and holds_run(self.log_dir):  # started meanwhile by another run
                lock.release()
                raise ConfigError(f"log folder {self.log_dir} already holds a run: choose another --log_path, "
                                  "or --resume it")
            checkpoints.remove_partials(self.log_dir)
            if not resume:  # events of an attempt that finished no epoch
                for stale in self.log_dir.glob("events.out.tfevents.*"):
                    stale.unlink()

        self.guarded(claim)
        rows = self.restore() if resume else []
        if self.comm.rank == 0:
            self.logger = Logger(rows=rows)
        if resume and self.last_checkpoint is not None:
            self.guarded(lambda: self.publish(self.first_epoch - 1) if self.comm.rank == 0 else None)

        def open_files() -> None:
            if self.comm.rank == 0:
                if resume and (note := versions.difference(self.log_dir, self.comm.size > 1)):
                    print(note, file=sys.stderr)
                write_params(self.log_dir, self.config.to_dict())
                versions.write(self.log_dir, self.comm.size > 1)
                self.logger.print(report.header(self.config, self.first_epoch))
                if self.config.tensorboard:
                    self.tensorboard = TensorBoardWriter(self.log_dir)
        self.guarded(open_files)

    def run(self, resume: bool = False) -> list[dict[str, float]]:
        try:
            self.start(resume)
            for epoch in range(self.first_epoch, self.config.n_epochs):
                row = self.run_epoch(epoch)
                self.check_health(epoch, row)
                if self.logger is not None:
                    self.logger.log_epoch(row)
                stop = self.reached_stop(row["test/success_rate"])
                self.save(epoch, row)
                if stop:
                    break
            if self.logger is not None:
                self.logger.print(report.summary(self.logger.rows, self.log_dir, time.time() - self.start_time))
        except KeyboardInterrupt as e:
            raise self.interrupted(e) from None
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            self.lock.release()
        return self.logger.rows if self.logger is not None else []

    def interrupted(self, signal: KeyboardInterrupt) -> Interrupted:
        what = "SIGTERM" if isinstance(signal, Terminated) else "Ctrl-C"
        if self.last_checkpoint is None:
            where = "no epoch was complete; start the run again"
        else:
            epoch = int(self.last_checkpoint.name.removeprefix("epoch_"))
            where = f"the last complete epoch is {epoch} ({self.last_checkpoint}); continue with --resume {self.log_dir}"
        return Interrupted(f"stopped by {what}: {where}", 143 if isinstance(signal, Terminated) else 130)


def demo_digest(demos: dict[str, np.ndarray]) -> str:
    """sha256 of the demo arrays a run learns from, so a resume can tell whether a demo file holds the same."""
    digest = hashlib.sha256()
    for key in sorted(demos):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(demos[key]).tobytes())
    return digest.hexdigest()


def train(config: Config, comm: mpi.SingleProcess | mpi.MPIComm | None = None) -> list[dict[str, float]]:
    """Train as ``config`` says; returns the rows written to progress.csv (empty on ranks other than 0).

    Every input (log folder, --load_path, --demo_file) is checked before the log folder is created.
    """
    comm = comm if comm is not None else mpi.world()
    configure_threads(comm.local_size)
    # Only rank 0 writes the log folder, so only rank 0 checks it; its verdict stops every rank.
    mpi.on_every_rank(comm, lambda: check_log_dir(config) if comm.rank == 0 else None, USER_ERRORS)
    return Trainer(config, comm).run()


def resume_config(log_dir: str | Path, n_epochs: int | None = None, mpi_size: int = 1,
                  demo_file: str | None = None) -> Config:
    """The configuration of the run in ``log_dir`` (its params.json), optionally with more epochs or the demo
    file at a new place."""
    log_dir = Path(log_dir)
    params = log_dir / "params.json"
    try:
        saved = json.loads(params.read_text())
    except FileNotFoundError:
        raise ResumeError(f"{log_dir} holds no run to resume (no params.json): pass the log folder of a run") from None
    except (OSError, ValueError) as e:
        raise ResumeError(f"cannot read {params} ({e}): the run cannot be resumed") from None
    changes: dict[str, Any] = {"log_path": str(log_dir), "mpi_size": mpi_size}
    if n_epochs is not None:
        changes["n_epochs"] = n_epochs
    if demo_file is not None:
        if not (isinstance(saved, dict) and saved.get("demo_file")):
            raise ResumeError(f"{log_dir} was trained without demonstrations: drop --demo_file")
        changes["demo_file"] = demo_file
    try:
        return config_from_dict(saved, **changes)
    except ConfigError as e:
        raise ResumeError(f"{params}: {e}") from None


def resume(log_dir: str | Path, n_epochs: int | None = None, comm: mpi.SingleProcess | mpi.MPIComm | None = None,
           demo_file: str | None = None) -> list[dict[str, float]]:
    """Continue the run in ``log_dir`` from its newest committed checkpoint (see Trainer.restore)."""
    comm = comm if comm is not None else mpi.world()

    def check() -> Config:
        if comm.rank == 0:
            checkpoints.RunLock(Path(log_dir)).check_free()
        config = resume_config(log_dir, n_epochs, comm.size, demo_file)
        found = checkpoints.latest(log_dir)
        if found is not None and found[0] + 1 >= config.n_epochs:
            raise ResumeError(f"{log_dir} already finished its {config.n_epochs} epochs: pass --n_epochs N to "
                              "train it further")
        if found is None and (Path(log_dir) / "resume").is_dir():
            raise ResumeError(f"{log_dir} was written by an older version of this project, whose resume files "
                              "cannot be continued: start a new run")
        return config

    config = mpi.on_every_rank(comm, check, USER_ERRORS)
    configure_threads(comm.local_size)
    return Trainer(config, comm).run(resume=True)
