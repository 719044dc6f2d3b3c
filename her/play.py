"""Run a saved policy (decision D12): deterministic episodes, a line per episode, the success rate, and
optionally a window (where a display exists) or a video file (offscreen MuJoCo rendering).

Frames of a video: one after each reset and one after each of the T steps, so a video of ``n`` episodes
holds exactly ``n * (T + 1)`` frames, played at the task's ``render_fps`` (25 for Fetch).

Offscreen rendering and ``MUJOCO_GL``: gymnasium's MuJoCo renderer reads ``MUJOCO_GL`` when it creates its
first GL context, i.e. on the first ``env.render()``; neither ``import mujoco`` nor ``import gymnasium_robotics``
creates a context or imports PyOpenGL. ``play()`` therefore picks a backend at its start, before it makes the
env, and that works even if ``her.envs`` (and so mujoco) was imported earlier. (``mujoco.GLContext``, which
mujoco binds at import time, is not used by gymnasium.) Once a backend has rendered in a process, PyOpenGL is
bound to its platform, so the choice holds for the rest of the process; a ``MUJOCO_GL`` the user set is kept.

The policy acts through ``her.policy`` (numpy only), so playing never imports TensorFlow; a caller's process
may have, though: see ``isolate_mesa_llvm``. Without it, rendering with Mesa's llvmpipe (the software renderer
of headless machines) crashes once TensorFlow is imported, in either order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any
from collections.abc import Callable, MutableMapping

import numpy as np

from her.config import ConfigError, coerce, env_module, package_list, unnamed_modules
from her import atomic, envs, policy_file, versions
from her import policy as saved_policy
from her.rollout import RolloutWorker
from her.starts import SeededResets

VIDEO_FORMATS = {".mp4": "FFMPEG", ".gif": "GIF"}
APT_PACKAGES = "apt-get install -y libegl1 libgl1 libegl-mesa0 libosmesa6"
DEFAULT_FPS = 25


class PlayError(ConfigError):
    """A play request that cannot run (bad video name, unknown task, no offscreen GL); one line."""


# ---- offscreen GL backend ----


def _loadable(name: str) -> bool:
    """Whether the shared library ``lib<name>`` can be loaded (e.g. ``EGL``, ``OSMesa``)."""
    candidates = [ctypes.util.find_library(name), f"lib{name}.so.1", f"lib{name}.so"]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            ctypes.CDLL(candidate)
            return True
        except OSError:
            continue
    return False


def choose_offscreen_gl(environ: MutableMapping[str, str] | None = None,
                        loadable: Callable[[str], bool] = _loadable) -> str:
    """Set ``MUJOCO_GL`` for offscreen rendering unless the user set it: egl, else osmesa; returns the choice."""
    environ = os.environ if environ is None else environ
    current = environ.get("MUJOCO_GL", "").strip()
    if current:
        return current
    order = [("egl", "EGL"), ("osmesa", "OSMesa")]
    # mujoco's egl/osmesa modules refuse a different PYOPENGL_PLATFORM, so honour one that is already set.
    platform = environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if platform in ("egl", "osmesa"):
        order = [pair for pair in order if pair[0] == platform]
    for backend, library in order:
        if loadable(library):
            environ["MUJOCO_GL"] = backend
            return backend
    raise PlayError(
        "writing a video needs offscreen OpenGL, but neither libEGL nor libOSMesa can be loaded"
        + (f" (PYOPENGL_PLATFORM={platform})" if platform else "")
        + f": install them with `{APT_PACKAGES}`, or set MUJOCO_GL"
    )


def _mesa_driver_libraries(environ: MutableMapping[str, str]) -> list[str]:
    """Mesa's GL driver files on this machine (gallium megadriver and, from Mesa 24.1, libgallium-*.so)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [d for d in environ.get("LIBGL_DRIVERS_PATH", "").split(":") if d]
    dirs += [f"/usr/lib/{multiarch}/dri" if multiarch else "", "/usr/lib64/dri", "/usr/lib/dri", "/usr/local/lib/dri"]
    for folder in (Path(d) for d in dirs if d):
        driver = folder / "swrast_dri.so"
        if driver.is_file():
            return sorted(str(p) for p in folder.parent.glob("libgallium*.so")) + [str(driver)]
    return []


def isolate_mesa_llvm(backend: str | None, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Load Mesa's driver so that it binds to its own LLVM, not to the LLVM copy TensorFlow exports.

    TensorFlow loads ``libtensorflow_framework`` with RTLD_GLOBAL, and it exports LLVM symbols; Mesa's llvmpipe
    (and radeonsi) then call TensorFlow's LLVM of another version and crash (SIGSEGV in ``mjr_makeContext``).
    Loading the driver first with RTLD_DEEPBIND makes it resolve symbols in its own dependencies first; the
    later ``dlopen`` by libEGL / libGL / libOSMesa reuses that loaded copy. Must run before the first GL context;
    a no-op where there is no Mesa (e.g. NVIDIA's driver) or no RTLD_DEEPBIND (non-glibc). Returns what it loaded.
    """
    environ = os.environ if environ is None else environ
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    if not deepbind or sys.platform != "linux":
        return []
    libraries = _mesa_driver_libraries(environ)
    if backend == "osmesa":
        osmesa = ctypes.util.find_library("OSMesa")
        libraries = ([osmesa] if osmesa else []) + libraries
    loaded = []
    for library in libraries:
        try:
            ctypes.CDLL(library, mode=os.RTLD_NOW | os.RTLD_LOCAL | deepbind)
            loaded.append(library)
        except OSError:
            continue
    return loaded


def has_display(environ: MutableMapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def choose_render_mode(video: bool, render: bool | None,
                       environ: MutableMapping[str, str] | None = None) -> str | None:
    """'rgb_array' for a video (it wins over a window), 'human' where a display exists unless render is False."""
    if video:
        return "rgb_array"
    if render and not has_display(environ):
        raise PlayError("a window was asked for but there is no display ($DISPLAY / $WAYLAND_DISPLAY): "
                        "write a video file instead")
    if render is not False and has_display(environ):
        return "human"
    return None


# ---- video file ----


def check_video_path(video: str | os.PathLike) -> Path:
    path = Path(video)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise PlayError(f"video file {path} must end in .mp4 or .gif, not {path.suffix or '(no extension)'!r}")
    if path.is_dir():
        raise PlayError(f"video file {path} is a folder: give a file name ending in .mp4 or .gif")
    if not path.parent.is_dir():
        raise PlayError(f"cannot write video {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise PlayError(f"cannot write video {path}: folder {path.parent} is not writable")
    return path


class VideoWriter:
    """Frames go to a temporary file beside ``path``; ``commit()`` renames it into place, ``abort()`` deletes it."""

    def __init__(self, path: Path, fps: int):
        import imageio.v2 as imageio

        self.path = path
        suffix = path.suffix.lower()
        # The temporary name keeps the extension: ffmpeg picks the container from it.
        fd, self.tmp = atomic.temporary_beside(path, suffix=f".part{suffix}")
        os.close(fd)
        self.frames = 0
        try:
            if suffix == ".mp4":
                # yuv420p plays everywhere; 480x480 frames need no resizing (macro_block_size 16).
                self.writer = imageio.get_writer(self.tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                                 pixelformat="yuv420p", quality=7, macro_block_size=16)
            else:
                self.writer = imageio.get_writer(self.tmp, format="GIF", mode="I", duration=1000.0 / fps, loop=0)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def append(self, frame: np.ndarray) -> None:
        self.writer.append_data(np.asarray(frame, dtype=np.uint8))
        self.frames += 1

    def commit(self) -> None:
        self.writer.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        atomic.replace_durably(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - the run already failed; cleaning up must not hide why
            pass
        self.tmp.unlink(missing_ok=True)


# ---- playing ----


def check_modules_named(path: Path, policy_env: str, policy_packages: list[str], gym_packages: str,
                        env: str | None) -> None:
    """Refuse a policy whose env needs modules imported that the user did not name (and that are not imported)."""
    missing = unnamed_modules(policy_env, policy_packages, [*package_list(gym_packages), *env_module(env)])
    if missing:
        raise policy_file.PolicyFileError(
            f"{path} needs {', '.join(missing)} imported to make its env, and loading a policy runs no code the "
            f"policy names: if you trust it, pass --gym_packages {','.join(missing)}")


def play(load_path: str, *, env: str | None = None, n_episodes: int = 10, video: str | None = None,
         seed: int = 0, render: bool | None = None, save_demos: str | None = None,
         only_success: bool = False, gym_packages: str = "") -> dict[str, Any]:
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
        raise policy_file.PolicyFileError(f"{policy.path} records a configuration that cannot be used: {e}") \
            from None
    check_modules_named(policy.path, policy_env, packages, gym_packages, env)
    try:  # the user's modules register the policy's env (and --env's)
        envs.resolve_env_id(policy_env, packages)
    except ValueError as e:
        raise policy_file.PolicyFileError(f"{policy.path} is a policy for a task that cannot be made here: {e}") \
            from None
    if env is not None:
        try:
            wanted = envs.resolve_env_id(env)
        except ValueError as e:
            raise PlayError(str(e)) from None
        if wanted != policy.env_id:
            raise policy_file.PolicyFileError(f"{policy.path} is a policy for {policy.env_id}, not {wanted}: "
                                             f"drop --env or pass --env {policy.env_id}")
    try:
        T = envs.episode_length(envs.resolve_env_id(policy.env_id))
    except ValueError as e:
        raise policy_file.PolicyFileError(f"{policy.path} is a policy for a task that cannot be made here: {e}") \
            from None

    render_mode = choose_render_mode(video_path is not None, render)
    if render_mode == "rgb_array":
        choose_offscreen_gl()  # before the env makes its first GL context (see the module docstring)
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
            if writer is None:
                return
            try:
                frame = environment.render()
            except Exception as e:  # noqa: BLE001 - GL failures come as many types; say what to do
                if writer.frames:
                    raise
                raise PlayError(
                    f"offscreen rendering with MUJOCO_GL={os.environ.get('MUJOCO_GL')} failed "
                    f"({type(e).__name__}: {e}); install `{APT_PACKAGES}` or set MUJOCO_GL to egl or osmesa"
                ) from None
            writer.append(np.asarray(frame))

        # Seeding the first reset makes the episodes a function of ``seed`` alone (env_dims stepped the env).
        watch = Watching(seeds=[seed] + [None] * (n_episodes - 1), capture=capture,
                         record_states=save_demos is not None)
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


def write_demos(path: str, episodes: list[dict[str, np.ndarray]], env_id: str, only_success: bool,
                no_states: str = "") -> None:
    from her.demo import save_demos

    if not episodes:
        raise PlayError(f"no episode succeeded, so {path} was not written: play more --n_episodes or drop "
                        "--only_success")
    save_demos(path, {key: np.stack([e[key] for e in episodes]) for key in episodes[0]}, env_id, no_states=no_states)
    kept = "successful episodes" if only_success else "episodes"
    print(f"demos: {path} ({len(episodes)} {kept})", flush=True)


def _run_folder(policy_path: Path) -> Path:
    """The log folder a policy file belongs to (it may sit in checkpoints/epoch_N/), for its versions.json."""
    for folder in (policy_path.parent, *policy_path.parents[1:3]):
        if (folder / versions.FILE).exists():
            return folder
    return policy_path.parent
