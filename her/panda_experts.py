"""Scripted experts for panda-gym's tasks (``her-demos --env PandaStack``), as ``her.experts`` defines them.

panda-gym's action moves the end effector's target by 5 cm per unit (``ee_displacement * 0.05``, through
inverse kinematics) and the finger opening by 0.2 x the last component; the fingers close along y and open
to 8 cm around 4 cm cubes. Observation layout (panda-gym 3): end effector position 0:3, velocity 3:6, finger
width 6, then per object position (3), Euler rotation (3), velocity (3) and angular velocity (3): PickAndPlace
and Push 7:19, Stack 7:19 (object 1, the bottom block) and 19:31 (object 2).

Measured success (``her-demos --env ... --num_episodes 100``, seed 0): see docs/panda.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

METRES_PER_ACTION = 0.05
GAIN = 0.5 / METRES_PER_ACTION  # close half the error per step: the arm lags its target, full steps overshoot
SIZE = 0.04  # cube edge


def _action(xyz, fingers: float, cap: float = 1.0) -> np.ndarray:
    """An action moving by ``xyz`` metres of error (scaled by GAIN, at most ``cap``), fingers -1 close .. 1 open."""
    move = GAIN * np.asarray(xyz, dtype=np.float64)
    largest = np.abs(move).max()
    if largest > cap:
        move *= cap / largest  # keep the direction
    action = np.empty(4, np.float32)
    action[:3] = move
    action[3] = fingers
    return np.clip(action, -1.0, 1.0)


def holding(ee: np.ndarray, width: float, obj: np.ndarray) -> bool:
    """The fingers are closed on the cube: it sits between them and they stop at its width."""
    rel = obj - ee
    return bool(np.linalg.norm(rel[:2]) < 0.03 and abs(rel[2]) < 0.02 and 0.03 < width < 0.05)


def grasp(
    ee: np.ndarray, width: float, obj: np.ndarray, hover_z: float, offset_x: float = 0.0, recentre: bool = False
) -> np.ndarray:
    """Go over the cube at ``hover_z``, centre on it (``offset_x`` off centre along x), lower with open fingers,
    then close them."""
    rel = obj + np.array([offset_x, 0.0, 0.0]) - ee
    xy = np.linalg.norm(rel[:2])
    if xy > 0.012:
        if ee[2] < obj[2] + 0.025:
            if recentre and xy < 0.02 and width > 0.07:
                # Fingers open astride it: rising first cost PandaStack 6-10 steps (PickAndPlace's expert keeps
                # rising, so that its committed demonstrations stay what they were).
                return _action([*rel[:2], 0.0], 1.0)
            # Straight up first: moving sideways this low sweeps the cubes; opening here would push one away.
            return _action([0.0, 0.0, hover_z - ee[2]], -1.0 if width < 0.03 else 1.0)
        if xy > 0.03:
            return _action([*rel[:2], hover_z - ee[2]], 1.0)
        return _action([*rel[:2], 0.0], 1.0)  # centre before lowering: fingers off-centre land on the cube
    if rel[2] < -0.01:
        err = rel.copy()
        if width < 0.07:
            err[2] = 0.0  # fingers still opening: wait above the cube
        return _action(err, 1.0)
    return _action(rel, -1.0)


def carry(obj: np.ndarray, place: np.ndarray, carry_z: float, moved: float = 0.0) -> np.ndarray | None:
    """Holding the cube: lift it to ``carry_z``, take it over ``place``, lower it there; None once it is there.

    Slow (at most 0.4 of full speed sideways): the cube slides between the finger pads when the arm moves fast.
    Vertical moves are at least 1.5 cm a step, since the arm sags under the cube and smaller targets stall.
    The cube keeps swinging 1-2 cm along y between the pads, so once it is lowered it is steered where it is
    (up to 3 cm off) and let go within 2 cm once it is still (``moved``, how far it went in the last step, under
    2 mm; 0 lets go at once): let go while swinging, cube 2 slid on along y and off cube 1. Steered there at half
    the gain, as full steps against the swing kept it swinging.
    """
    e = place - obj
    exy = np.linalg.norm(e[:2])
    low = obj[2] < carry_z - 0.015
    if exy > 0.03 or (exy > 0.01 and not low):
        if low:
            return _action([0.0, 0.0, max(carry_z + 0.01 - obj[2], 0.03)], -1.0, cap=0.6)
        move = _action([*e[:2], carry_z - obj[2]], -1.0, cap=0.4)
        if exy > 0.02 and np.abs(move[:2]).max() < 0.25:
            move[:2] *= 0.25 / np.abs(move[:2]).max()  # the arm sags under the cube: smaller targets stall
        return move
    if e[2] < -0.008:
        return _action([*e[:2], min(e[2], -0.03) if exy < 0.02 else 0.0], -1.0, cap=0.4)
    if exy > 0.02 or moved > 0.002:
        return _action([*(0.5 * e[:2]), 0.0], -1.0, cap=0.4)
    return None


def reach_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """PandaReach: the end effector straight to the goal (its action has no finger component)."""
    return _action(obs["desired_goal"] - obs["observation"][0:3], 0.0)[:3]


def pick_and_place_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """PandaPickAndPlace: grasp the cube, carry it to the goal (on the table or in the air) and hold it there."""
    o, goal = obs["observation"], obs["desired_goal"]
    ee, width, obj = o[0:3], float(o[6]), o[7:10]
    if holding(ee, width, obj):
        return _action(goal - obj, -1.0, cap=0.8)
    return grasp(ee, width, obj, obj[2] + 0.06)


class StackExpert:
    """PandaStack: cube 1 onto its goal on the table, then cube 2 onto cube 1 where it stands; then clear away.

    Cube 2 may start on cube 1 or on cube 1's goal (panda-gym drops it from 6 cm anywhere in the range): it is
    first put aside. Keeps one episode's phase (rising after a release, the spot set aside, where the cubes were a
    step ago): one per episode.
    """

    def __init__(self) -> None:
        self.rising = False
        self.aside: np.ndarray | None = None
        self.last: np.ndarray | None = None  # the cubes' positions at the last step

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        o, goal = obs["observation"], obs["desired_goal"]
        ee, width = o[0:3], float(o[6])
        pos = np.stack([o[7:10], o[19:22]])
        self.last, last = pos, self.last
        targets = goal.reshape(2, 3)
        held = [holding(ee, width, p) for p in pos]
        # A held cube is not placed until carry() lowers and releases it: letting go as soon as it comes within
        # 2 cm drops it from up to 2 cm, off centre when it slid in the grip.
        on_goal = np.linalg.norm(pos[0] - targets[0]) < 0.02 and not held[0]
        # Cube 2 on cube 1 as it stands, not on cube 1's goal: success allows 10 cm over both cubes, and
        # re-grasping a cube 2 mm too far from its goal knocks the tower over.
        stacked = (
            on_goal
            and not held[1]
            and np.linalg.norm(pos[1, :2] - pos[0, :2]) < 0.02
            and abs(pos[1, 2] - pos[0, 2] - SIZE) < 0.01
        )
        travel_z = pos[:, 2].max() + SIZE + 0.04  # fingertips clear of every cube
        if self.rising:
            if ee[2] < travel_z - 0.01 or width < 0.07:
                return _action([0.0, 0.0, travel_z + 0.01 - ee[2]], 1.0)
            self.rising = False
        if stacked:
            return _action([0.0, 0.0, travel_z - ee[2]], 1.0)  # done: stay clear of the tower
        if not on_goal:
            on_top = np.linalg.norm(pos[1, :2] - pos[0, :2]) < SIZE * 1.2 and pos[1, 2] > pos[0, 2] + 0.02
            in_way = np.linalg.norm(pos[1, :2] - targets[0, :2]) < 0.07
            # Once lifted, cube 2 goes all the way aside: carried out of the zone, it was dropped there.
            if on_top or in_way or (self.aside is not None and held[1]):
                if self.aside is None:
                    self.aside = self._free_spot(pos, targets)
                i, place = 1, self.aside
            else:
                self.aside = None
                i, place = 0, targets[0].copy()
        else:
            i, place = 1, targets[1].copy()
            place[:2] = pos[0, :2]  # on cube 1 as it stands
        obj = pos[i]
        offset = _clear_of(obj, pos[1 - i])
        if held[i]:
            moved = 0.0 if last is None else float(np.linalg.norm(obj[:2] - last[i, :2]))
            # Carried over the other cube, not into it: 1 cm above the table, cube 1 swept cube 2 along.
            carry_z = max(place[2] + 0.03, pos[1 - i][2] + SIZE + 0.01)
            # Only cube 2 on cube 1 waits to be still: cube 1 swinging 2 mm above the table waited out the
            # episode, and the aside spot needs no precision.
            action = carry(obj, place, carry_z, moved if i == 1 and self.aside is None else 0.0)
            if action is not None:
                return action
            self.rising = True
            if i == 1 and not on_goal:
                self.aside = None
            return _action(np.zeros(3), 1.0)  # in place: let go
        return grasp(ee, width, obj, travel_z, offset_x=offset, recentre=True)

    @staticmethod
    def _free_spot(pos: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """A spot on the table away from cube 1 and its goal, not far from cube 2."""
        xs = np.linspace(-0.15, 0.15, 7)
        spots = np.array([[x, y, SIZE / 2] for x in xs for y in xs])
        avoid = np.stack([pos[0, :2], targets[0, :2]])
        clearance = np.min(np.linalg.norm(spots[:, None, :2] - avoid[None], axis=2), axis=1)
        score = np.minimum(clearance, 0.12) - 0.3 * np.linalg.norm(spots[:, :2] - pos[1, :2], axis=1)
        return spots[int(np.argmax(score))]


def _clear_of(obj: np.ndarray, other: np.ndarray) -> float:
    """How far off the cube's centre along x to grasp it so that the fingers, which close along y and are about
    2 cm wide in x, come down clear of ``other`` standing beside it along y; 0 when they already do."""
    d = other[:2] - obj[:2]
    if other[2] > 0.03 or abs(d[1]) > 0.04 + 0.01 + SIZE / 2 * 1.4 or abs(d[0]) > SIZE / 2 + 0.01 + SIZE / 2:
        return 0.0
    side = -1.0 if d[0] > 0 else 1.0  # away from the other cube
    return side * float(np.clip(0.035 - abs(d[0]), 0.0, 0.018))


EXPERTS: dict[str, Callable[[Mapping[str, np.ndarray]], np.ndarray] | type] = {
    "PandaReach": reach_expert,
    "PandaPickAndPlace": pick_and_place_expert,
    "PandaStack": StackExpert,
}
