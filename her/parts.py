"""Builds the parts of one training run from its configuration: envs, buffers, sampler, learner and workers.

Everything here is made once, before the first epoch, and handed to the loop (``her.train``) and to the
checkpoints (``her.run_folder``) as one ``Parts``. The parts themselves take explicit arguments, not a ``Config``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from her import envs, mpi, policy_file
from her.config import Config, ConfigError
from her.demo import EPISODE_KEYS, load_demos
from her.errors import UserError
from her.her_sampler import PRIORITIES, sample_her_transitions
from her.learner import LEARNERS, Learner
from her.replay_buffer import Priority, ReplayBuffer, episode_shapes
from her.rollout import RolloutWorker
from her.starts import training_starts


@dataclass
class Parts:
    config: Config
    envs: list[Any]  # training envs, config.rollout_batch_size of them
    eval_envs: list[Any]
    dims: dict[str, int]  # {"o": dim_o, "g": dim_g, "u": dim_u}
    explore_rng: np.random.Generator  # exploration noise and demo-state starts
    sample_rng: np.random.Generator  # replay sampling and buffer eviction
    sampler: Callable[..., dict[str, np.ndarray]]  # (episodes, batch size, rng) -> transitions
    buffer: ReplayBuffer
    demo_buffer: ReplayBuffer | None
    demo_digest: str | None  # sha256 of the demo arrays, so that a resume can check its --demo_file
    learner: Learner  # the networks being trained; policy files are its snapshots
    worker: RolloutWorker  # explores on envs
    evaluator: RolloutWorker  # acts deterministically on eval_envs


def thread_count(processes_on_host: int, host_cores: int, usable_cores: int) -> int:
    """TensorFlow threads for one MPI process: its share of the host's cores, but no more than it may run on.

    ``mpirun`` without ``--oversubscribe`` pins each rank to one core, even ``-np 1`` on a bigger machine.
    """
    return max(1, min(host_cores // processes_on_host, usable_cores))


def configure_threads(processes_on_host: int, threads: int = 0) -> None:
    """TensorFlow's threads: ``threads`` if given, else a share of this host's cores between the MPI processes
    on it (the reference used one thread per MPI process)."""
    import tensorflow as tf

    if threads <= 0:
        host_cores = os.cpu_count() or 1
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else host_cores
        threads = thread_count(processes_on_host, host_cores, usable)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already started (a second train() in one process): keep its settings.


def make_learner(
    config: Config,
    dims: dict[str, int],
    allreduce: Any = None,
    lowest_reward: float = -1.0,
    success_reward: float = 0.0,
) -> Learner:
    """The learner the configuration names (``learner``, an entry of ``her.learner.LEARNERS``). Its critic
    targets are bounded by the most a return can lose, lowest_reward / (1 - gamma), and by the most it can gain:
    0 for rewards <= 0 (the reference's bound), success_reward / (1 - gamma) above it."""
    assert config.gamma is not None, "build_config derives gamma"
    entry = LEARNERS[config.learner]
    return entry.load()(
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
        clip_low=lowest_reward * config.return_clip,
        clip_high=success_reward * config.return_clip if success_reward > 0 else 0.0,
        layer_norm=config.layer_norm,
        bc_loss=config.bc_loss,
        q_filter=config.q_filter,
        prm_loss_weight=config.prm_loss_weight,
        aux_loss_weight=config.aux_loss_weight,
        seed=config.seed,
        allreduce=allreduce,
        **{key: getattr(config, key) for key in entry.keys},
    )


def episode_priority(config: Config, dims: dict[str, int], goal_env: Any) -> Priority | None:
    """The sampler's episode weights (``replay_priority``, an entry of ``her_sampler.PRIORITIES``), or None for
    uniform draws."""
    make = PRIORITIES[config.replay_priority].make
    if make is None:
        return None
    try:
        return make(config, dims, goal_env)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def build(config: Config, comm: mpi.SingleProcess | mpi.MPIComm, load_weights: bool = True) -> Parts:
    """Every part of a run on this rank; bad input files stop every rank together, before any collective.

    ``load_weights=False`` skips --load_path's file, for a resume whose checkpoint holds the weights."""
    # Decision D8: rank r draws everything from seed + 1_000_000 * r.
    seeds = np.random.SeedSequence(config.seed + 1_000_000 * comm.rank)
    explore_seq, sample_seq, train_env_seq, eval_env_seq = seeds.spawn(4)
    explore_rng, sample_rng = np.random.default_rng(explore_seq), np.random.default_rng(sample_seq)

    make = partial(envs.make_env, config.env_id, env_kwargs=config.make_kwargs)
    try:
        train_envs = [make(int(s)) for s in train_env_seq.generate_state(config.rollout_batch_size)]
        eval_envs = [make(int(s)) for s in eval_env_seq.generate_state(config.rollout_batch_size)]
        probe = make(seed=0)  # checked and measured apart, so the run's envs keep their own random streams
        dims = envs.env_dims(probe)
        reward_low, reward_hit = envs.lowest_reward(probe), envs.success_reward(probe)
        probe.close()
    except ValueError as e:  # env_kwargs the env does not take, or the goal-env contract check
        raise ConfigError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - a user's env that cannot be made or reset may raise anything
        raise ConfigError(
            f"{config.env_id} cannot be made and reset ({type(e).__name__}: {e}): fix the env, or check --env_kwargs"
        ) from None

    goal_env: Any = train_envs[0].unwrapped  # compute_reward is a goal env's, not part of gym.Env
    reward_fn = goal_env.compute_reward
    sampler = partial(
        sample_her_transitions,
        relabel_p=config.relabel_p,
        reward_fn=reward_fn,
        strategy=config.replay_strategy,
        desired_share=config.desired_share,
    )
    shapes = episode_shapes(dims, config.T)
    check_memory(config, sum(int(np.prod(shape)) for shape in shapes.values()) * 4 * (config.buffer_size // config.T))
    # The priority draws the updates' episodes; the normaliser and the demos keep uniform draws.
    buffer = ReplayBuffer(
        shapes, config.buffer_size // config.T, sampler, priority=episode_priority(config, dims, goal_env)
    )

    loaded, loaded_meta, demos = mpi.on_every_rank(comm, lambda: read_inputs(config, dims, load_weights), (UserError,))
    digest = demo_digest(demos) if demos is not None else None  # states included, if loaded
    starts = training_starts(config, demos, train_envs)
    if demos is not None:  # the states restore envs; the buffers never see them
        demos = {key: demos[key] for key in EPISODE_KEYS}

    learner = make_learner(config, dims, comm.allreduce_mean if comm.size > 1 else None, reward_low, reward_hit)
    if loaded is not None:
        assert config.load_path is not None, "weights come from --load_path"
        mpi.on_every_rank(
            comm,
            partial(policy_file.check_arrays, loaded, learner.network_state(), config.load_path, loaded_meta),
            (UserError,),
        )
        learner.load_network_state(loaded)
    if comm.size > 1:  # every rank starts from rank 0's parameters
        learner.load_network_state(comm.bcast(learner.network_state()))

    worker = RolloutWorker(
        train_envs,
        learner,
        dims,
        config.T,
        rng=explore_rng,
        noise_eps=config.noise_eps,
        random_eps=config.random_eps,
        starts=starts,
    )
    evaluator = RolloutWorker(
        eval_envs, learner, dims, config.T, exploit=True, use_target_net=config.test_with_polyak, compute_Q=True
    )
    demo_buffer = None
    if demos is not None:
        demo_buffer = fill_demo_buffer(config, demos, dims, learner, sampler, reward_fn, sample_rng)
    return Parts(
        config,
        train_envs,
        eval_envs,
        dims,
        explore_rng,
        sample_rng,
        sampler,
        buffer,
        demo_buffer,
        digest,
        learner,
        worker,
        evaluator,
    )


def check_memory(config: Config, buffer_bytes: int) -> None:
    """Refuse a replay buffer larger than this machine's memory (numpy would fail deep inside, or the kernel would
    kill the run once the pages are touched)."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not every platform says
        return
    if buffer_bytes > physical:
        raise ConfigError(
            f"buffer_size={config.buffer_size} needs {buffer_bytes / 2**30:.1f} GiB for the replay "
            f"buffer of each MPI process, more than this machine's {physical / 2**30:.1f} GiB: choose a "
            "smaller --buffer_size"
        )


def read_inputs(
    config: Config, dims: dict[str, int], load_weights: bool = True
) -> tuple[dict[str, np.ndarray] | None, dict[str, Any], dict[str, np.ndarray] | None]:
    """The weights of --load_path with the file's record, and the episodes of --demo_file (None where not
    given), checked."""
    c = config
    loaded = demos = None
    meta: dict[str, Any] = {}
    if c.load_path and load_weights:
        loaded, meta = policy_file.read_policy(c.load_path)
        policy_file.check_compatible(
            meta,
            c.load_path,
            env_id=c.env_id,
            dims=dims,
            hidden=c.hidden,
            layers=c.layers,
            layer_norm=c.layer_norm,
            learner=c.learner,
        )
    if c.demo_file:
        demos = load_demos(
            c.demo_file,
            env_id=c.env_id,
            dims=dims,
            T=c.T,
            num_demo=c.num_demo,
            allow_legacy=c.demo_legacy,
            need_states=c.demo_reset_p > 0,
        )
    return loaded, meta, demos


def fill_demo_buffer(
    config: Config,
    demos: dict[str, np.ndarray],
    dims: dict[str, int],
    learner: Learner,
    sampler: Callable[..., dict[str, np.ndarray]],
    reward_fn: Callable[..., np.ndarray],
    rng: np.random.Generator,
) -> ReplayBuffer:
    """Fill the demo buffer once (D7) and initialise the normaliser from the demos (D6)."""
    c = config
    demo_sampler = sampler if c.demo_relabel else partial(sample_her_transitions, relabel_p=0.0, reward_fn=reward_fn)
    demo_buffer = ReplayBuffer(episode_shapes(dims, c.T), c.num_demo, demo_sampler)
    demo_buffer.store_episode(demos, rng)
    for e in range(c.num_demo):  # once per demo episode, T HER-sampled transitions each, as the reference
        episode = {key: value[e : e + 1] for key, value in demos.items()}
        learner.update_normalizer(sampler(episode, c.T, rng))
    return demo_buffer


def demo_digest(demos: dict[str, np.ndarray]) -> str:
    """sha256 of the demo arrays a run learns from, so a resume can tell whether a demo file holds the same."""
    digest = hashlib.sha256()
    for key in sorted(demos):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(demos[key]).tobytes())
    return digest.hexdigest()
