"""Builds every part from the configuration and runs the training loop (reference §13).

This is the only module besides the CLI that reads a ``Config``; it hands each part explicit arguments.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from experiment.config import Config, ConfigError
from her import checkpoint, envs, mpi
from her.ddpg import DDPG, make_batch
from her.her_sampler import sample_her_transitions
from her.logger import Logger
from her.replay_buffer import ReplayBuffer, episode_shapes
from her.rollout import RolloutWorker


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite values, ranks out of sync); the message says where and why."""


def configure_threads(n_workers: int) -> None:
    """Share the machine's cores between the MPI workers on it (the reference used one thread per worker)."""
    import tensorflow as tf

    threads = max(1, (os.cpu_count() or 1) // n_workers)
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


def prepare_log_dir(config: Config) -> Path:
    """Create the log folder, refusing one that already holds a run or cannot be written."""
    log_dir = Path(config.log_path)
    if (log_dir / "progress.csv").exists():
        raise ConfigError(f"log folder {log_dir} already holds a run: choose another --log_path")
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        probe = log_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write to log folder {log_dir} ({e.strerror}): choose another --log_path") from None
    return log_dir


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
        self.envs = [envs.make_env(config.env_id, int(s)) for s in train_env_seq.generate_state(rbs)]
        self.eval_envs = [envs.make_env(config.env_id, int(s)) for s in eval_env_seq.generate_state(rbs)]
        self.dims = envs.env_dims(envs.make_env(config.env_id, seed=0))

        reward_fn = self.envs[0].unwrapped.compute_reward
        self.sampler = partial(sample_her_transitions, future_p=config.future_p, reward_fn=reward_fn)
        self.buffer = ReplayBuffer(episode_shapes(self.dims, T), config.buffer_size // T, self.sampler)

        allreduce = comm.allreduce_mean if comm.size > 1 else None
        self.policy = make_policy(config, self.dims, allreduce)
        if config.load_path:
            self.load_policy(config.load_path)
        # Every worker starts from rank 0's parameters.
        if comm.size > 1:
            self.policy.load_network_state(comm.bcast(self.policy.network_state()))

        self.worker = RolloutWorker(
            self.envs, self.policy, self.dims, T, rng=self.explore_rng,
            noise_eps=config.noise_eps, random_eps=config.random_eps,
        )
        self.evaluator = RolloutWorker(
            self.eval_envs, self.policy, self.dims, T, exploit=True,
            use_target_net=config.test_with_polyak, compute_Q=True,
        )
        self.demo_buffer: ReplayBuffer | None = None
        self.log_dir = Path(config.log_path) if rank == 0 else None
        self.logger = Logger(self.log_dir) if rank == 0 else None
        self.best_success = -np.inf
        self.start_time = time.time()

    def load_policy(self, path: str) -> None:
        arrays, meta = checkpoint.read_policy(path)
        checkpoint.check_compatible(meta, path, env_id=self.config.env_id, dims=self.dims,
                                    hidden=self.config.hidden, layers=self.config.layers)
        self.policy.load_network_state(arrays)

    # ---- the loop ----

    def store(self, episode: dict[str, np.ndarray]) -> None:
        """Store new episodes and update the normaliser from HER-sampled transitions of them (reference §8)."""
        self.buffer.store_episode(episode, self.sample_rng)
        n_transitions = episode["u"].shape[0] * episode["u"].shape[1]
        self.policy.update_normalizer(self.sampler(episode, n_transitions, self.sample_rng))

    def sample_batch(self):
        c = self.config
        if self.demo_buffer is None:
            return make_batch(self.buffer.sample(c.batch_size, self.sample_rng))
        own = self.buffer.sample(c.batch_size - c.demo_batch_size, self.sample_rng)
        demo = self.demo_buffer.sample(c.demo_batch_size, self.sample_rng)
        return make_batch(own, demo)

    def run_epoch(self, epoch: int) -> dict[str, float]:
        c = self.config
        timer = Timer()
        losses: dict[str, list[float]] = defaultdict(list)
        self.worker.clear_history()
        for _ in range(c.n_cycles):
            with timer("rollout"):
                self.store(self.worker.generate_rollouts())
            with timer("update"):
                for _ in range(c.n_batches):
                    for key, value in self.policy.train(self.sample_batch()).items():
                        losses[key].append(value)
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
        row["time/total"] = time.time() - self.start_time
        return row

    def check_health(self, epoch: int, row: dict[str, float]) -> None:
        bad = [k for k in ("loss/critic", "loss/actor") if not np.isfinite(row[k])]
        if bad or not self.policy.all_finite():
            what = ", ".join(bad) if bad else "network parameters"
            raise TrainingError(f"epoch {epoch}: {what} became NaN or infinite; the last good policy is kept")
        if self.comm.size > 1:
            mine = self.policy.flat_params()
            same = np.array_equal(mine, self.comm.bcast(mine))
            if not all(self.comm.allgather(same)):
                raise TrainingError(f"epoch {epoch}: parameters differ across MPI workers; the job cannot continue")

    def save(self, epoch: int, success: float) -> None:
        if self.log_dir is None:
            return
        save = partial(checkpoint.save_policy, network_state=self.policy.network_state(),
                       config=self.config.to_dict(), dims=self.dims, epoch=epoch, test_success_rate=success)
        save(self.log_dir / "policy_latest.npz")
        if success >= self.best_success:
            self.best_success = success
            save(self.log_dir / "policy_best.npz")
        interval = self.config.policy_save_interval
        if interval > 0 and epoch % interval == 0:
            save(self.log_dir / f"policy_{epoch}.npz")

    def run(self) -> list[dict[str, float]]:
        if self.logger is not None:
            self.logger.write_params(self.config.to_dict())
        for epoch in range(self.config.n_epochs):
            row = self.run_epoch(epoch)
            self.check_health(epoch, row)
            if self.logger is not None:
                self.logger.log_epoch(row)
            self.save(epoch, row["test/success_rate"])
        return self.logger.rows if self.logger is not None else []


def train(config: Config, comm: mpi.SingleProcess | mpi.MPIComm | None = None) -> list[dict[str, float]]:
    """Train as ``config`` says; returns the rows written to progress.csv (empty on ranks other than 0)."""
    comm = comm if comm is not None else mpi.world()
    configure_threads(comm.size)
    problem = None
    if comm.rank == 0:
        try:
            prepare_log_dir(config)
        except ConfigError as e:
            problem = str(e)
    # Every rank learns of rank 0's problem, so all of them stop with exit code 2 instead of waiting for rank 0.
    problem = comm.bcast(problem)
    if problem is not None:
        raise ConfigError(problem)
    return Trainer(config, comm).run()
