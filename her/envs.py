"""Task names, environment construction and the goal-env contract check."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from her import fetch_obs, panda

TASKS = {
    "FetchReach": "FetchReach-v4",
    "FetchPush": "FetchPush-v4",
    "FetchPickAndPlace": "FetchPickAndPlace-v4",
    "FetchSlide": "FetchSlide-v4",
    "FetchStack2": "FetchStack2-v1",
    "FetchStack3": "FetchStack3-v1",
    **panda.TASKS,
}

# Where a step's info says whether the goal is reached: Fetch and Hand envs say is_success, the mazes success.
SUCCESS_KEYS = {"is_success", "success"}


def info_success(info: Mapping[str, Any]) -> float:
    """Whether a step's info says the goal is reached, under either of SUCCESS_KEYS."""
    return float(info["is_success"] if "is_success" in info else info["success"])


_registered = False


def _register() -> None:
    global _registered  # registration is a process-wide side effect of gymnasium; do it once
    if _registered:
        return
    # gymnasium-robotics prints an unrelated notice about Adroit envs on import; keep stderr for real errors.
    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    # Imported here, after the quiet import above: FetchStack builds on gymnasium_robotics.
    from her.fetch_stack import EPISODE_STEPS

    for n, steps in EPISODE_STEPS.items():
        for suffix, reward_type in (("", "sparse"), ("Dense", "dense")):
            gym.register(
                f"FetchStack{n}{suffix}-v1",
                entry_point="her.fetch_stack:MujocoFetchStackEnv",
                kwargs={"n_blocks": n, "reward_type": reward_type},
                max_episode_steps=steps,
            )
    _registered = True


def import_packages(packages: Iterable[str]) -> None:
    """Import the user's modules, whose import registers their envs with gymnasium (rl-zoo's --gym_packages)."""
    for module in packages:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - any failure of the user's module is a one-line input error
            raise ValueError(
                f"cannot import {module!r} ({type(e).__name__}: {e}): check --gym_packages / "
                "--env module:EnvId and that the module is on PYTHONPATH"
            ) from None


def resolve_env_id(name: str, packages: Iterable[str] = ()) -> str:
    """Short task name (``FetchPush``), registered gymnasium id (``FetchPush-v4``) or ``module:EnvId`` (the
    module is imported first, as are ``packages``) -> gymnasium id."""
    _register()
    import_packages(packages)
    if ":" in name:
        module, _, name = name.partition(":")
        import_packages([module])
    if panda.is_panda(name):
        panda.check_makeable(name)
    if name in TASKS:
        return TASKS[name]
    old = re.fullmatch(r"(Fetch[A-Za-z]+?)(Dense)?-v(\d+)", name)
    if old and old.group(1) in TASKS and name.replace(old.group(2) or "", "") != TASKS[old.group(1)]:
        dense = old.group(2) or ""
        current = TASKS[old.group(1)].replace("-v", f"{dense}-v")
        short = "" if dense else f" ({old.group(1)} for short)"
        why = (
            "needs the retired mujoco-py bindings"
            if old.group(3) == "1"
            else "is no longer provided by gymnasium-robotics"
        )
        raise ValueError(f"{name} {why}: use {current}{short}, the version this project trains")
    if name in gym.registry and not _needs_mujoco_py(name):
        return name
    newest = _current_version(name)
    if newest is not None:
        why = "needs the retired mujoco-py bindings" if name in gym.registry else "is not a registered version"
        raise ValueError(f"{name} {why}: use {newest}")
    known = ", ".join(TASKS)
    raise ValueError(f"unknown task {name!r}: use one of {known}, or a registered gymnasium id such as FetchPush-v4")


def _needs_mujoco_py(env_id: str) -> bool:
    # gymnasium-robotics keeps its v0/v1 ids registered with the mujoco-py classes, which cannot be made today.
    return "MujocoPy" in str(gym.spec(env_id).entry_point)


def _current_version(name: str) -> str | None:
    """The newest registered id of ``name``'s env (another version of it) that can be made, if any."""
    found = re.fullmatch(r"(.+)-v(\d+)", name)
    if not found:
        return None
    versions = [
        (int(m.group(1)), key)
        for key in gym.registry
        if (m := re.fullmatch(re.escape(found.group(1)) + r"-v(\d+)", key)) and not _needs_mujoco_py(key)
    ]
    return max(versions)[1] if versions else None


def task_name(env_id: str) -> str:
    """``FetchReach-v4`` -> ``FetchReach``: task overrides are keyed by task, never by version."""
    return re.sub(r"-v\d+$", "", env_id)


def base_task(env_id: str) -> str:
    """``FetchPushDense-v4`` -> ``FetchPush``: the dense variant has the sparse one's observations and dynamics."""
    return task_name(env_id).removesuffix("Dense")


def episode_length(env_id: str) -> int:
    """T, the time limit the task is registered with (50 for gymnasium-robotics' Fetch tasks, more for FetchStack)."""
    _register()
    if panda.is_panda(env_id):
        panda.register()  # imported only for its own ids: other runs do not pay PyBullet's import
    steps = gym.spec(env_id).max_episode_steps
    if not steps:
        raise ValueError(f"{env_id} has no time limit; HER needs fixed-length episodes")
    return int(steps)


# env id (and kwargs) -> whether her.fetch_obs agreed with the library on it; checked once per process.
_fast_obs_ok: dict[str, bool] = {}


def make_env(
    env_id: str,
    seed: int | None = None,
    render_mode: str | None = None,
    fast_obs: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
) -> gym.Env:
    """A gymnasium env, reset once with ``seed`` so its generator is seeded; later resets continue that stream.

    ``env_kwargs`` go to ``gym.make``; one it does not take is a one-line ValueError. ``fast_obs`` switches Fetch
    envs to the cached-index observation path of ``her.fetch_obs``, once that path was seen to agree with the
    library's own on this env (a gymnasium-robotics release could change what it observes).
    """
    _register()
    kwargs = dict(env_kwargs or {})
    env = _make(env_id, render_mode, kwargs)
    if fast_obs:
        key = f"{env_id} {sorted(kwargs.items())!r}"
        if key not in _fast_obs_ok:
            _fast_obs_ok[key] = fetch_obs.agrees(lambda: _make(env_id, None, kwargs))
            if not _fast_obs_ok[key]:
                print(
                    f"note: her.fetch_obs observes {env_id} differently from gymnasium-robotics "
                    f"{_version('gymnasium-robotics')}: using the library's slower observation path",
                    file=sys.stderr,
                )
        if _fast_obs_ok[key]:
            fetch_obs.install(env)
    env.reset(seed=seed)
    return env


def _make(env_id: str, render_mode: str | None, kwargs: Mapping[str, Any]) -> gym.Env:
    if render_mode is not None:  # an env without rendering need not take the argument at all
        kwargs = {**kwargs, "render_mode": render_mode}
    try:
        if panda.is_panda(env_id):
            return panda.make(env_id, **kwargs)
        return gym.make(env_id, **kwargs)
    except TypeError as e:  # an env_kwargs key the env's constructor does not take
        if not kwargs:
            raise
        reason = str(e).split(" was raised from the environment creator")[0]  # gymnasium repeats the kwargs
        raise ValueError(f"{env_id} does not take env_kwargs {dict(kwargs)}: {reason}") from None


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def success_reward(env: gym.Env) -> float:
    """The reward of a step that reaches its goal: ``compute_reward(ag, ag)``. 0 for Fetch's -1/0 reward; envs that
    reward success with 1 (gymnasium-robotics' mazes) need critic targets bounded above by 1 / (1 - gamma)."""
    obs, _ = env.reset()
    goal_env: Any = env.unwrapped
    achieved = obs["achieved_goal"][None]
    return float(np.asarray(goal_env.compute_reward(achieved, achieved, None)).reshape(-1)[0])


def lowest_reward(env: gym.Env) -> float:
    """The env's lowest reward per step, from a finite ``reward_range`` it declares (FetchStack's step reward:
    minus the number of blocks), else -1, the sparse Fetch reward's, by which the reference bounds every task's
    critic targets (its dense ones too)."""
    low = getattr(env.unwrapped, "reward_range", (-1.0, 0.0))[0]
    return float(low) if np.isfinite(low) and low < 0 else -1.0


def env_dims(env: gym.Env) -> dict[str, int]:
    """Sizes of o, g and u, after checking the env is a goal env whose reward HER can recompute in batches."""
    obs, _ = env.reset()
    raw: Any = env.unwrapped  # a goal env: compute_reward is not part of gym.Env
    name = env.spec.id if env.spec is not None else type(raw).__name__
    missing = {"observation", "achieved_goal", "desired_goal"} - set(obs)
    if missing:
        raise ValueError(f"{name} is not a goal env: its observation lacks {sorted(missing)}")
    for key in ("observation", "achieved_goal", "desired_goal"):
        shape = np.shape(obs[key])
        if len(shape) != 1:  # the buffers hold (T+1, dim) per episode; a 2-d array would be cut to its rows
            raise ValueError(
                f"{name}: its {key} has shape {shape}, and HER needs 1-d arrays: flatten it in the env "
                "(or with gymnasium.wrappers.TransformObservation)"
            )
    dims = {
        "o": obs["observation"].shape[0],
        "g": obs["desired_goal"].shape[0],
        "u": int(env.action_space.shape[0]),  # type: ignore[index]  # a Box, whose shape is never None
    }
    # The sampler recomputes rewards for a whole batch at once; check compute_reward is vectorised
    # and agrees with the reward the env returns from step().
    action = np.zeros(dims["u"], dtype=np.float32)
    step_obs, step_reward, _, _, info = env.step(action)
    ag = np.stack([step_obs["achieved_goal"]] * 2)
    g = np.stack([step_obs["desired_goal"]] * 2)
    batch_reward = raw.compute_reward(ag, g, None)
    if np.shape(batch_reward) != (2,) or not np.allclose(batch_reward, float(step_reward)):
        raise ValueError(f"{name}: compute_reward is not vectorised or disagrees with step()")
    if not SUCCESS_KEYS & set(info):
        raise ValueError(
            f"{name}: step() info has no 'is_success' (nor 'success'): HER needs to know when an "
            "episode reached its goal"
        )
    env.reset()
    return dims
