"""Run a saved policy (decision D12): deterministic episodes, a line per episode, the success rate, and
optionally a window (where a display exists) or a video file (offscreen MuJoCo rendering, ``her.video``).

Frames of a video: one after each reset and one after each of the T steps, so a video of ``n`` episodes
holds exactly ``n * (T + 1)`` frames, played at the task's ``render_fps`` (25 for Fetch). ``play()`` picks the
offscreen GL backend at its start, before it makes the env (see ``her.video``).

The policy acts through ``her.policy`` (numpy only), so playing never imports TensorFlow; a caller's process
may have, though: see ``her.video.isolate_mesa_llvm``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from her import envs, policy_file, versions
from her import policy as saved_policy
from her.config import ConfigError, coerce, env_module, package_list, unnamed_modules
from her.rollout import RolloutWorker
from her.starts import SeededResets
from her.video import DEFAULT_FPS, PlayError, VideoWriter, check_video_path, choose_offscreen_gl, isolate_mesa_llvm

# ---- window or video ----


def has_display(environ: MutableMapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def choose_render_mode(video: bool, render: bool | None, environ: MutableMapping[str, str] | None = None) -> str | None:
    """'rgb_array' for a video (it wins over a window), 'human' where a display exists unless render is False."""
    if video:
        return "rgb_array"
    if render and not has_display(environ):
        raise PlayError(
            "a window was asked for but there is no display ($DISPLAY / $WAYLAND_DISPLAY): write a video file instead"
        )
    if render is not False and has_display(environ):
        return "human"
    return None


# ---- playing ----


def check_modules_named(
    path: Path, policy_env: str, policy_packages: list[str], gym_packages: str, env: str | None
) -> None:
    """Refuse a policy whose env needs modules imported that the user did not name (and that are not imported)."""
    missing = unnamed_modules(policy_env, policy_packages, [*package_list(gym_packages), *env_module(env)])
    if missing:
        raise policy_file.PolicyFileError(
            f"{path} needs {', '.join(missing)} imported to make its env, and loading a policy runs no code the "
            f"policy names: if you trust it, pass --gym_packages {','.join(missing)}"
        )


def play(  # noqa: C901 - checks and set-up in the order playing needs them
    load_path: str,
    *,
    env: str | None = None,
    n_episodes: int = 10,
    video: str | None = None,
    seed: int = 0,
    render: bool | None = None,
    save_demos: str | None = None,
    only_success: bool = False,
    gym_packages: str = "",
) -> dict[str, Any]:
    """Run ``n_episodes`` deterministic episodes of the policy at ``load_path`` (a policy file or a log folder).

    ``env`` (optional) must name the policy's own task. With ``video`` (.mp4 or .gif) every episode is rendered
    offscreen into that file; otherwise a window opens when a display exists and ``render`` is not False.
    ``save_demos`` writes the episodes (with ``only_success``, the successful ones) as a demo file for --demo_file.
    Modules the policy's env needs (its ``gym_packages``, the module of a ``module:EnvId``) are imported only if
    ``gym_packages`` or ``env`` names them too: a policy file from elsewhere runs no code of its own choosing.
    Returns ``{"returns", "successes", "success_rate", "env_id", "policy_path", "video", "frames", "demos"}``.
    """
    # Cheap checks first: nothing is built before the request is known to be sound.
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise PlayError(f"n_episodes must be an integer >= 1, got {n_episodes!r}")
    video_path = check_video_path(video) if video is not None else None
    if save_demos is not None:
        check_demo_path(save_demos)
    policy = saved_policy.load(load_path)  # acting needs nothing but the policy file, and no TensorFlow
    folder = _run_folder(policy.path)
    recorded = None if (folder / versions.FILE).exists() else policy.meta.get("versions")
    note = versions.difference(folder if recorded is None else policy.path, then=recorded)
    if note:
        print(note, file=sys.stderr)
    try:  # the record's own checks, as for a params.json: a policy file may come from anywhere
        policy_env = str(policy.config.get("env") or policy.env_id)
        packages = package_list(coerce("gym_packages", policy.config.get("gym_packages") or ""))
        env_kwargs = json.loads(coerce("env_kwargs", policy.config.get("env_kwargs") or "") or "{}")
    except ConfigError as e:
        raise policy_file.PolicyFileError(f"{policy.path} records a configuration that cannot be used: {e}") from None
    check_modules_named(policy.path, policy_env, packages, gym_packages, env)
    try:  # the user's modules register the policy's env (and --env's)
        envs.resolve_env_id(policy_env, packages)
    except ValueError as e:
        raise policy_file.PolicyFileError(
            f"{policy.path} is a policy for a task that cannot be made here: {e}"
        ) from None
    if env is not None:
        try:
            wanted = envs.resolve_env_id(env)
        except ValueError as e:
            raise PlayError(str(e)) from None
        if wanted != policy.env_id:
            raise policy_file.PolicyFileError(
                f"{policy.path} is a policy for {policy.env_id}, not {wanted}: drop --env or pass --env {policy.env_id}"
            )
    try:
        T = envs.episode_length(envs.resolve_env_id(policy.env_id))
    except ValueError as e:
        raise policy_file.PolicyFileError(
            f"{policy.path} is a policy for a task that cannot be made here: {e}"
        ) from None

    render_mode = choose_render_mode(video_path is not None, render)
    if render_mode == "rgb_array":
        choose_offscreen_gl()  # before the env makes its first GL context (see her.video)
    if render_mode is not None:
        isolate_mesa_llvm(os.environ.get("MUJOCO_GL") if render_mode == "rgb_array" else "glfw")

    try:
        environment = envs.make_env(policy.env_id, seed=seed, render_mode=render_mode, env_kwargs=env_kwargs)
    except ValueError as e:
        raise policy_file.PolicyFileError(f"{policy.path}: {e}") from None
    writer: VideoWriter | None = None
    episodes: list[dict[str, np.ndarray]] = []
    try:
        dims = envs.env_dims(environment)
        if dims != policy.dims:
            raise policy_file.PolicyFileError(f"{policy.path} has dimensions {policy.dims}, the task has {dims}")

        if video_path is not None:
            fps = int(environment.metadata.get("render_fps") or DEFAULT_FPS)
            writer = VideoWriter(video_path, fps)

        def capture() -> None:
            if writer is not None:
                writer.capture(environment)

        # Seeding the first reset makes the episodes a function of ``seed`` alone (env_dims stepped the env).
        watch = Watching(
            seeds=[seed] + [None] * (n_episodes - 1), capture=capture, record_states=save_demos is not None
        )
        worker = RolloutWorker([environment], SavedPolicy(policy), dims, T, starts=watch, after_step=watch.after_step)
        returns: list[float] = []
        successes: list[float] = []
        finals: dict[str, list[np.ndarray]] = {}  # the env's other last-step info numbers, per episode
        for episode in range(n_episodes):
            rollout = worker.generate_rollouts()  # one env: (1, T+1 or T, dim)
            success = float(rollout["info_is_success"][0, -1, 0])
            if save_demos is not None and (success or not only_success):
                episodes.append({key: value[0] for key, value in rollout.items()})
                if watch.states is not None:
                    episodes[-1].update(watch.states.arrays())
            returns.append(watch.total)
            successes.append(success)
            # What else the env reported after the last step (FetchStack: which blocks are placed).
            for key, history in worker.info_history.items():
                finals.setdefault(key, []).append(history[-1])
            extras = "".join(f", {key} {_numbers(values[-1])}" for key, values in finals.items())
            print(f"episode {episode}: return {watch.total:.1f}, success {success:g}{extras}", flush=True)
        rate = float(np.mean(successes))
        means = "".join(f", {key} {_numbers(np.mean(values, axis=0), '.2f')}" for key, values in finals.items())
        print(f"success rate {rate:.3f} over {n_episodes} episodes of {policy.env_id}{means}", flush=True)

        frames = 0
        if writer is not None:
            frames = writer.frames
            writer.commit()
            writer = None
            print(f"video: {video_path} ({frames} frames)", flush=True)
        if save_demos is not None:
            write_demos(save_demos, episodes, policy.env_id, only_success, watch.no_states)
    finally:
        if writer is not None:
            writer.abort()
        environment.close()  # frees the GL context now, not in a destructor at interpreter exit

    return {
        "returns": returns,
        "successes": successes,
        "success_rate": rate,
        "env_id": policy.env_id,
        "policy_path": str(policy.path),
        "video": str(video_path) if video_path is not None else None,
        "frames": frames,
        "demos": len(episodes) if save_demos is not None else None,
    }


# ---- saving the episodes as demonstrations ----


def check_demo_path(path: str) -> None:
    if not str(path).strip():
        raise PlayError("--save_demos is an empty string (an unset shell variable?): give a file name")
    if not str(path).endswith(".npz"):
        raise PlayError(f"--save_demos {path}: demo files are .npz archives; give a name ending in .npz")
    folder = Path(path).absolute().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise PlayError(f"--save_demos {path}: {folder} is not a writable folder")


class SavedPolicy:
    """A policy file's deterministic actions, as ``RolloutWorker`` asks for them."""

    def __init__(self, policy: saved_policy.Policy):
        self.policy = policy

    def get_actions(self, o: np.ndarray, g: np.ndarray, **_: Any) -> tuple[np.ndarray, None]:
        return self.policy.act({"observation": o, "desired_goal": g}), None


class Watching:
    """Play's hooks into the rollout: seeded resets, and after each step a frame, the summed reward and, when the
    episodes are saved as demos, the simulator state."""

    def __init__(self, seeds: list[int | None], capture: Callable[[], None], record_states: bool = False):
        self.resets = SeededResets(seeds)
        self.capture = capture
        self.total = 0.0  # the return of the episode under way (or just ended)
        self.record_states = record_states
        self.no_states = ""  # why the states could not be recorded, if they could not
        self.states: Any = None  # her.demo.EpisodeStates of the episode under way

    def start(self, env_index: int, env: Any, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        from her.demo import EpisodeStates

        self.states = None
        if self.record_states and not self.no_states:
            try:
                EpisodeStates.track(env)  # before the reset, as the generator does
                self.states = EpisodeStates()
            except ValueError as e:
                self.no_states = str(e)
        obs = self.resets.start(env_index, env, rng)
        self.total = 0.0
        self.capture()
        if self.states is not None:
            self.states.record(env)
        return obs

    def after_step(self, t: int, env_index: int, env: Any, result: tuple[Any, ...]) -> None:
        self.total += float(result[1])
        self.capture()
        if self.states is not None:
            self.states.record(env)


def _numbers(value: np.ndarray, spec: str = "g") -> str:
    values = np.ravel(value)
    text = " ".join(format(float(v), spec) for v in values)
    return text if values.size == 1 else f"[{text}]"


def write_demos(
    path: str, episodes: list[dict[str, np.ndarray]], env_id: str, only_success: bool, no_states: str = ""
) -> None:
    from her.demo import save_demos

    if not episodes:
        raise PlayError(
            f"no episode succeeded, so {path} was not written: play more --n_episodes or drop --only_success"
        )
    save_demos(path, {key: np.stack([e[key] for e in episodes]) for key in episodes[0]}, env_id, no_states=no_states)
    kept = "successful episodes" if only_success else "episodes"
    print(f"demos: {path} ({len(episodes)} {kept})", flush=True)


def _run_folder(policy_path: Path) -> Path:
    """The log folder a policy file belongs to (it may sit in checkpoints/epoch_N/), for its versions.json."""
    for folder in (policy_path.parent, *policy_path.parents[1:3]):
        if (folder / versions.FILE).exists():
            return folder
    return policy_path.parent
