"""experiment/hand_reach_goals.py: the goal kinds, the kinematic fit, and the finding docs/results.md reports
(the committed HandReach policy solves every kind of goal but the ring finger's)."""

from __future__ import annotations

import numpy as np
import pytest

from experiment import hand_reach_goals as goals
from experiment import results
from her.envs import make_env


def test_goal_kind_names_the_finger_that_moved_or_none():
    start = np.zeros(15)
    ring = start.copy()
    ring[6:9] = [0.01, 0.0, 0.0]  # the third fingertip
    ring[12:15] = [0.0, 0.02, 0.0]  # the thumb moves too, and is not a kind of its own
    assert goals.goal_kind(start, ring) == "ring"
    assert goals.goal_kind(start, start.copy()) == "all back"


def test_the_fit_finds_a_pose_the_joints_can_take():
    env = make_env(goals.ENV_ID, seed=0)
    hand = goals.HandKinematics(env)
    start = env.unwrapped.data.qpos[hand.qpos].copy()
    pose = start + 0.3 * (np.random.default_rng(1).uniform(hand.low, hand.high) - start)
    target = hand.tips(pose)[0]
    hand.tips(start)  # back to the start pose, where the first descent begins
    assert np.linalg.norm(target - hand.tips(start)[0]) > 0.02  # a goal away from the start
    assert hand.closest(target, np.random.default_rng(0), starts=2) < 1e-3


@pytest.mark.artefacts
def test_the_committed_policy_misses_only_the_ring_finger_goals():
    by_kind = goals.evaluate(str(results.RESULTS / "hand_reach_low_noise" / "policy.npz"), 30, seed=12345)
    ring = [success for success, _ in by_kind["ring"]]
    others = [success for kind, found in by_kind.items() if kind != "ring" for success, _ in found]
    assert ring and max(ring) == 0.0
    assert np.mean(others) >= 0.8
    assert all(distance < goals.THRESHOLD for found in by_kind.values() for success, distance in found if success)
