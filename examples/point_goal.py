"""A goal env of your own, in one file: a point on a plane moves towards a goal (``PointGoal-v0``).

    python -m her.run --gym_packages examples.point_goal --env PointGoal-v0 --n_epochs 5

What the trainer needs from a goal env: a dict observation (``observation``, ``achieved_goal``,
``desired_goal``), a ``compute_reward`` that works on whole batches of goals (HER relabels them), ``is_success``
(or ``success``) in ``info``, and a registered ``max_episode_steps``. The reward may be Fetch's -1 until the
goal is reached and 0 there, or 0 and 1 on success as gymnasium-robotics' mazes give it (``reward_type=success``
here, which also reports ``info['success']`` as the mazes do): critic targets are bounded by what a return can
lose and gain. Importing this module registers the env.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class PointGoalEnv(gym.Env):
    """The point starts at the origin; the goal is uniform in [-size, size]^2; success within ``distance``."""

    metadata = {"render_modes": []}

    def __init__(self, size: float = 1.0, distance: float = 0.05, reward_type: str = "sparse"):
        if reward_type not in ("sparse", "success"):
            raise ValueError(f"reward_type must be 'sparse' (-1/0) or 'success' (0/1), got {reward_type!r}")
        self.size, self.distance, self.reward_type = size, distance, reward_type
        box = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.observation_space = gym.spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2)
        self.goal = np.zeros(2)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"observation": self.pos.copy(), "achieved_goal": self.pos.copy(), "desired_goal": self.goal.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = np.zeros(2)
        self.goal = self.np_random.uniform(-self.size, self.size, 2)
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.clip(action, -1.0, 1.0), -self.size, self.size)
        obs = self._obs()
        success = np.linalg.norm(self.pos - self.goal) < self.distance
        info = {"success" if self.reward_type == "success" else "is_success": np.float32(success)}
        return obs, float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)), False, False, info

    def compute_reward(self, achieved_goal, desired_goal, info):
        """-1 until within ``distance`` of the goal, 0 there (``success``: 0, then 1); one goal or a batch (..., 2)."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        reached = (d < self.distance).astype(np.float32)
        return reached if self.reward_type == "success" else reached - 1.0


gym.register(id="PointGoal-v0", entry_point="examples.point_goal:PointGoalEnv", max_episode_steps=50)
