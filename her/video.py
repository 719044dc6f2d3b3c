"""Rendering played episodes offscreen into a video file: the GL back-end, Mesa kept apart from TensorFlow's LLVM,
and the file, written atomically (``--play --video``, ``experiment/frames.py``).

Offscreen rendering and ``MUJOCO_GL``: gymnasium's MuJoCo renderer reads ``MUJOCO_GL`` when it creates its
first GL context, i.e. on the first ``env.render()``; neither ``import mujoco`` nor ``import gymnasium_robotics``
creates a context or imports PyOpenGL. A caller therefore picks a backend (``choose_offscreen_gl``) before it
makes the env, and that works even if ``her.envs`` (and so mujoco) was imported earlier. (``mujoco.GLContext``,
which mujoco binds at import time, is not used by gymnasium.) Once a backend has rendered in a process, PyOpenGL
is bound to its platform, so the choice holds for the rest of the process; a ``MUJOCO_GL`` the user set is kept.

Without ``isolate_mesa_llvm``, rendering with Mesa's llvmpipe (the software renderer of headless machines)
crashes once TensorFlow is imported, in either order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import sysconfig
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from her import atomic
from her.config import ConfigError

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


def choose_offscreen_gl(
    environ: MutableMapping[str, str] | None = None, loadable: Callable[[str], bool] = _loadable
) -> str:
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
                self.writer = imageio.get_writer(
                    self.tmp,
                    format="FFMPEG",
                    mode="I",
                    fps=fps,
                    codec="libx264",
                    pixelformat="yuv420p",
                    quality=7,
                    macro_block_size=16,
                )
            else:
                self.writer = imageio.get_writer(self.tmp, format="GIF", mode="I", duration=1000.0 / fps, loop=0)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def append(self, frame: np.ndarray) -> None:
        self.writer.append_data(np.asarray(frame, dtype=np.uint8))
        self.frames += 1

    def capture(self, env: Any) -> None:
        """Render ``env`` and append the frame; a first frame that fails is GL's failure, said in one line."""
        try:
            frame = env.render()
        except Exception as e:  # noqa: BLE001 - GL failures come as many types; say what to do
            if self.frames:
                raise
            raise PlayError(
                f"offscreen rendering with MUJOCO_GL={os.environ.get('MUJOCO_GL')} failed "
                f"({type(e).__name__}: {e}); install `{APT_PACKAGES}` or set MUJOCO_GL to egl or osmesa"
            ) from None
        self.append(np.asarray(frame))

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
