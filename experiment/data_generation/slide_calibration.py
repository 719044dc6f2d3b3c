"""Measure where a calibrated strike sends the FetchSlide puck; writes the table ``SlideExpert`` inverts.

The gripper waits at rest ``STRIKE_STANDOFF`` behind a puck at rest, drives at action ``s * dir / max|dir|`` for
``STRIKE_STEPS`` steps, backs off, and the puck slides to a stop. For every strike angle and strength the table
holds the mean slide length and direction over a few puck positions around the start of FetchSlide's episodes.
Run ``python experiment/data_generation/slide_calibration.py`` (a few minutes) after changing the strike.
"""

from __future__ import annotations

import numpy as np

from her.fetch_experts import (
    SLIDE_TABLE,
    STRIKE_HEIGHT,
    STRIKE_STANDOFF,
    strike_action,
)

ANGLES = np.arange(-90.0, 90.1, 5.0)  # d_x >= 0 in FetchSlide: the goal lies beyond the puck
STRENGTHS = np.round(np.arange(0.2, 1.001, 0.05), 2)
POSITIONS = [(0.95, 0.69), (0.95, 0.81), (1.08, 0.69), (1.08, 0.81)]  # around the puck's start ring


def measure(env, xy, angle: float, s: float) -> np.ndarray:
    """Displacement (m) of the puck at rest at ``xy`` struck from ``angle`` (degrees) with strength ``s``."""
    raw = env.unwrapped
    u = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    obs, _ = env.reset(seed=0)
    park = raw._utils.get_joint_qpos(raw.model, raw.data, "object0:joint").copy()
    park[:2] = (0.6, 0.3)  # out of the gripper's way while it takes its place
    raw._utils.set_joint_qpos(raw.model, raw.data, "object0:joint", park)
    target = np.r_[np.asarray(xy) - STRIKE_STANDOFF * u, STRIKE_HEIGHT]
    for _ in range(30):
        obs, *_ = env.step(np.clip(np.r_[10.0 * (target - obs["observation"][0:3]), 0.0], -1, 1).astype(np.float32))
    puck = np.r_[xy, park[2], 1.0, 0.0, 0.0, 0.0]
    raw._utils.set_joint_qpos(raw.model, raw.data, "object0:joint", puck)
    raw._utils.set_joint_qvel(raw.model, raw.data, "object0:joint", np.zeros(6))
    raw._mujoco.mj_forward(raw.model, raw.data)
    obs = raw._get_obs()
    for k in range(1, 48):
        obs, *_ = env.step(strike_action(obs["observation"], u, s, k))
    return obs["observation"][3:5] - np.asarray(xy)


def main() -> None:
    from her.envs import make_env

    env = make_env("FetchSlide-v4")
    rows = []
    for angle in ANGLES:
        for s in STRENGTHS:
            d = np.mean([measure(env, xy, angle, s) for xy in POSITIONS], axis=0)
            rows.append((angle, s, np.linalg.norm(d), np.degrees(np.arctan2(d[1], d[0]))))
        print(f"angle {angle:+.0f}: lengths {np.round([r[2] for r in rows[-len(STRENGTHS) :]], 2)}", flush=True)
    header = "strike_angle_deg,strength,slide_length_m,slide_angle_deg"
    np.savetxt(SLIDE_TABLE, np.array(rows), fmt="%.4f", delimiter=",", header=header, comments="")
    print(f"wrote {SLIDE_TABLE}")


if __name__ == "__main__":
    main()
