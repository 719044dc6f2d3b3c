"""panda-gym (PyBullet) as an env family: its import, its ids, and quiet env construction.

panda-gym is an optional extra (``pip install -e '.[panda]'``). Its goal envs follow the contract HER needs
(dict observations, a vectorised ``compute_reward``, ``info['is_success']``), with two differences that matter
here: an episode reports ``terminated=True`` on the step that reaches the goal, which the rollout ignores as
the reference ignores Fetch's (every episode is T steps, success is read after the last one), and PyBullet
writes start-up lines from C on every connect (``argv[0]=--background_color_...``) and at import, which
``quiet_c_output`` keeps off the terminal. ``make`` also closes each env's PyBullet connection before the
interpreter tears pybullet down, where pybullet_utils' own clean-up would print a traceback at every exit, and
gives unseeded resets seeds of their own (``SeededResets``), without which no run on panda-gym repeats.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import weakref
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

# Short names, as the Fetch tasks have them. The Joints and Dense variants are reachable by their full ids.
TASKS = {
    "PandaReach": "PandaReach-v3",
    "PandaPush": "PandaPush-v3",
    "PandaSlide": "PandaSlide-v3",
    "PandaPickAndPlace": "PandaPickAndPlace-v3",
    "PandaStack": "PandaStack-v3",
}

# Ids that are registered but cannot be made with the released wheels, and why.
BROKEN = {
    "PandaFlip": "its cube's texture (colored_cube.png) is not in the panda-gym 3.0.7 wheel, so PyBullet fails "
    "with 'Error loading texture' when the env is made",
}

INSTALL_HINT = "pip install -e '.[panda]' (panda-gym and pybullet)"


def is_panda(env_id: str) -> bool:
    return env_id.split(":")[-1].startswith("Panda")


@contextlib.contextmanager
def quiet_c_output() -> Iterator[None]:
    """Point stdout's and stderr's descriptors at a temporary file; show what was written only on an exception.

    PyBullet prints from C, below Python's ``sys.stdout``, so only the descriptors can hold its lines back.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            _restore(saved)


def _restore(saved: list[int]) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):
            stream.flush()
    for fd, copy in zip((1, 2), saved):
        with contextlib.suppress(OSError):
            os.dup2(copy, fd)


def register() -> bool:
    """Import panda_gym (which registers its ids with gymnasium) without PyBullet's lines; False if missing."""
    if "panda_gym" in sys.modules:
        return True
    if importlib.util.find_spec("panda_gym") is None or importlib.util.find_spec("pybullet") is None:
        return False
    with quiet_c_output():  # pybullet prints its build time at import
        import panda_gym  # noqa: F401
    return True


class SeededResets(gym.Wrapper):
    """Give each unseeded reset a seed from a generator that the last seeded reset seeded.

    panda-gym 3.0.7 re-seeds its task's generator at every reset (``RobotTaskEnv.reset``), from the OS when no seed
    is given, so every episode after the first drew its goal and objects from fresh entropy and two runs of one
    seed differed. Gymnasium's contract, which the Fetch envs keep, is that later resets continue the stream of
    the seeded one; this wrapper restores it.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._seeds: np.random.Generator | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None:
            self._seeds = np.random.default_rng(seed)
        elif self._seeds is not None:
            seed = int(self._seeds.integers(2**31 - 1))
        return self.env.reset(seed=seed, options=options)


def make(env_id: str, **kwargs: Any) -> Any:
    """``gym.make`` for a panda-gym id: panda-gym imported, PyBullet's lines held back, the connection closed
    when the env is collected or, at the latest, at exit (while pybullet can still be called)."""
    register()
    with quiet_c_output():  # PyBullet's start-up lines, printed at every connect
        env = gym.make(env_id, **kwargs)
    sim = getattr(env.unwrapped, "sim", None)
    if sim is not None and hasattr(sim, "close"):
        weakref.finalize(env, sim.close)  # holds the simulation, not the env: collected envs still close
    return SeededResets(env)


def check_makeable(env_id: str) -> None:
    """ValueError (one line) for a panda-gym id that cannot be made here."""
    name = env_id.split(":")[-1]
    for task, why in BROKEN.items():
        if name.startswith(task):
            raise ValueError(
                f"{name} cannot be trained here: {why}; the other panda-gym tasks work ({', '.join(TASKS)})"
            )
    if "panda_gym" not in sys.modules and not register():
        raise ValueError(f"{name} is a panda-gym task, and panda-gym is not installed: {INSTALL_HINT}")
