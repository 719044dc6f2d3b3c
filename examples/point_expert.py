"""An expert of your own for your own goal env: demonstrations for ``PointGoal-v0`` (examples/point_goal.py).

    her-demos --env examples.point_goal:PointGoal-v0 --expert examples.point_expert:expert --num_episodes 100
    python -m her.run --env examples.point_goal:PointGoal-v0 --demo_file data_point_goal_100.npz

An expert is a function from the observation dict to an action, or a class whose instances are (made afresh for
every episode, for an expert that keeps a phase), as ``Steady`` below. Any goal env works; where
``her.env_state`` knows the simulator (MuJoCo, PyBullet) the file also holds the states for demo resets.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Head for the goal: the env moves the point 0.1 per unit of action."""
    return np.clip((obs["desired_goal"] - obs["achieved_goal"]) / 0.1, -1.0, 1.0).astype(np.float32)


class Steady:
    """The same, at most half speed for the first ten steps of an episode: a phase kept per episode."""

    def __init__(self) -> None:
        self.t = 0

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        self.t += 1
        return expert(obs) * (0.5 if self.t <= 10 else 1.0)
