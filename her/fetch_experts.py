"""Scripted experts for the Fetch tasks (``her-demos --env FetchPush``), as ``her.experts`` defines them.

Measured success: PickAndPlace 100% (600 episodes), Push 99.8% (600), Reach 100%, Slide 95% (seeds 0-3: 96, 99,
92, 94 of 100), Stack2 100% (seeds 0-1, 200), Stack3 99% (seed 0: 99 of 100).

Observation layout of the Fetch object tasks (25 values): grip_pos 0:3, object_pos 3:6, object_rel_pos 6:9,
gripper_state 9:11, object_rot 11:14, object_velp 14:17 (relative to the gripper), object_velr 17:20,
grip_velp 20:23, gripper_vel 23:25; velocities are displacements per step (velocity x dt). FetchStack repeats
each object field per block (see her/fetch_stack.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

GAIN = 10.0  # action per metre of position error: the env moves the gripper about 3.3 cm per step at action 1


def _action(xyz, gripper: float) -> np.ndarray:
    a = np.empty(4, np.float32)
    a[:3] = GAIN * np.asarray(xyz, dtype=np.float64)
    a[3] = gripper
    return np.clip(a, -1.0, 1.0)


# ---- FetchReach ----


def reach_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Move the gripper straight to the goal."""
    return _action(obs["desired_goal"] - obs["observation"][0:3], 0.0)


# ---- FetchPickAndPlace ----


def pick_and_place_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Hover above the block, descend with open fingers, close, carry the block to the goal and hold it there.

    The phase is read from the observation alone, so a block that slips out restarts the approach.
    """
    o, goal = obs["observation"], obs["desired_goal"]
    grip, obj, rel = o[0:3], o[3:6], o[6:9]
    width = o[9] + o[10]  # finger opening: 0 closed, 0.1 open, about 0.05 around the 5 cm block
    xy = np.linalg.norm(rel[:2])
    if xy < 0.02 and abs(rel[2]) < 0.02 and 0.02 < width < 0.07:
        return _action(goal - obj, -1.0)  # holding it: carry, keep squeezing
    if xy > 0.01:
        err = obj + np.array([0.0, 0.0, 0.05]) - grip
        if grip[2] < obj[2] + 0.03 and xy > 0.02:
            err[:2] = 0.0  # rise clear of the block before moving sideways, or the fingers knock it away
        return _action(err, 1.0)
    return _lower_and_grip(rel, width)


def _lower_and_grip(rel: np.ndarray, width: float) -> np.ndarray:
    """Above a block (``rel``: block minus gripper): lower with open fingers, then close them around it."""
    if rel[2] < -0.01:
        err = rel.copy()
        if width < 0.08:
            err[2] = 0.0  # fingers still opening: wait above the block rather than land on it
        return _action(err, 1.0)
    return _action(rel, -1.0)  # fingers around the block: close


# ---- FetchPush and FetchSlide: get behind the object, then drive it ----

SAFE_HEIGHT = 0.07  # above the table-height push line when passing over the object
CLEARANCE = 0.07  # a path passing nearer than this to the object's centre goes over it, not around


def _segment_distance(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    ab = b - a
    s = np.clip((p - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(a + s * ab - p))


def _arrived(err_xy: np.ndarray, o: np.ndarray) -> bool:
    # Close enough, or as close as the arm reaches: near the workspace edge the gripper stops short.
    e = np.linalg.norm(err_xy)
    return bool(e < 0.01 or (e < 0.03 and np.linalg.norm(o[20:23]) < 0.002))


def _behind_then_drive(
    o: np.ndarray,
    height: float,
    u: np.ndarray,
    standoff: float,
    lat_tol: float,
    drive: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Put the gripper ``standoff`` behind the object along ``u`` at ``height``, then move it by ``drive``.

    ``drive(grip_xy, lateral_offset)`` gives the xy command (in metres of error) once the gripper is in place.
    """
    grip, obj = o[0:3], o[3:6]
    p = grip[:2] - obj[:2]
    along = p @ u
    lat = p - along * u
    behind = obj[:2] - standoff * u
    err_xy = behind - grip[:2]
    if along < -0.03 and np.linalg.norm(lat) < lat_tol:
        if grip[2] > height + 0.01:
            if not _arrived(err_xy, o):
                return _action([*err_xy, 0.0], 0.0)
            return _action([*err_xy, 2.0 * (height - grip[2])], 0.0)  # in place: descend
        return _action([*drive(grip[:2], lat), height - grip[2]], 0.0)
    if _arrived(err_xy, o):
        return _action([*err_xy, 2.0 * (height - grip[2])], 0.0)
    # On the way behind the object: go over it whenever the straight path would touch it.
    blocked = _segment_distance(grip[:2], behind, obj[:2]) < CLEARANCE
    if blocked and grip[2] < height + SAFE_HEIGHT - 0.01:
        return _action([0.0, 0.0, height + SAFE_HEIGHT - grip[2]], 0.0)
    z = height + SAFE_HEIGHT - grip[2] if blocked else 0.0
    return _action([*err_xy, z], 0.0)


def push_expert(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Get behind the block on the line from the goal through it, at table height, and push it to the goal."""
    o, goal = obs["observation"], obs["desired_goal"]
    obj = o[3:6]
    d = goal[:2] - obj[:2]
    dist = np.linalg.norm(d)
    if dist < 0.01:
        return _action(np.zeros(3), 0.0)
    u = d / dist
    height = goal[2] - 0.005  # Push goals lie on the table: push at the block's mid-height

    def drive(grip_xy: np.ndarray, lat: np.ndarray) -> np.ndarray:
        # Head for where the gripper stands when the block is on the goal, steering back onto the push line;
        # slow (at most 0.6) so the block does not slide past the goal.
        xy = 0.5 * ((goal[:2] - 0.045 * u - grip_xy) - 4.0 * lat)
        speed = np.linalg.norm(xy) * GAIN
        return xy * (0.6 / speed) if speed > 0.6 else xy

    return _behind_then_drive(o, height, u, standoff=0.07, lat_tol=0.02, drive=drive)


# FetchSlide: a strike from rest is repeatable, so the expert inverts a measured table of where strikes send the
# puck (slide_calibration.py writes it) rather than a friction model. The flat finger faces turn shallow strikes
# towards the axes and MuJoCo's pyramidal friction cone brakes diagonal slides less, both hard to model well.
SLIDE_TABLE = Path(__file__).with_name("assets") / "slide_strikes.csv"
STRIKE_STANDOFF = 0.06  # gripper centre behind the puck centre when the strike starts
STRIKE_STEPS = 5  # steps of driving; the puck leaves the fingers within them
STRIKE_HEIGHT = 0.42  # grip site height: the finger tips just clear the table
PLACE_TOL = 0.004  # the strike starts with the gripper this near its place: the slide is sensitive to the standoff
APPROACH_GAIN = 20.0  # the gripper covers about two thirds of its commanded step: nearly deadbeat, little overshoot
PUCK_CLEARANCE = 0.055  # puck radius + half the closed fingers' diagonal + overshoot; below STRIKE_STANDOFF


def strike_action(o: np.ndarray, u: np.ndarray, s: float, k: int) -> np.ndarray:
    """Step ``k`` (from 1) of a strike along ``u`` with strength ``s``: drive, back off, then keep still."""
    z = STRIKE_HEIGHT - o[2]
    if k <= STRIKE_STEPS:
        # Scaled by the largest component, so diagonal strikes use the gripper's full (faster) diagonal speed.
        return _action([*(s / GAIN * u / np.abs(u).max()), z], 0.0)
    if k <= STRIKE_STEPS + 3:
        return _action([*(-0.03 * u), z], 0.0)  # back off, or the fingers touch the puck again
    return _action([0.0, 0.0, z], 0.0)


_slide_table: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


def _strike_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(angles, strengths, slide length[angle, strength], slide direction[angle, strength]) from SLIDE_TABLE."""
    global _slide_table
    if _slide_table is None:
        rows = np.loadtxt(SLIDE_TABLE, delimiter=",", skiprows=1)
        angles, strengths = np.unique(rows[:, 0]), np.unique(rows[:, 1])
        shape = (len(angles), len(strengths))  # rows are written angle-major
        _slide_table = angles, strengths, rows[:, 2].reshape(shape), rows[:, 3].reshape(shape)
    return _slide_table


def plan_strike(disp: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Strike direction (unit xy) and strength that slide a puck at rest by ``disp``, from the measured table,
    and the slide length the table gives for them (short of ``|disp|`` if that is out of reach)."""
    angles, strengths, length, direction = _strike_grid()
    back = disp[0] < 0  # the table covers strikes with a forward x component; mirror the rare others
    psi = np.degrees(np.arctan2(disp[1], abs(disp[0])))
    fine = np.linspace(strengths[0], strengths[-1], 81)
    # Table columns at the fine strengths (linear in s), direction made monotone in the angle to invert it.
    length = np.stack([np.interp(fine, strengths, row) for row in length])
    direction = np.maximum.accumulate(np.stack([np.interp(fine, strengths, row) for row in direction]), axis=0)
    theta = np.array([np.interp(psi, direction[:, k], angles) for k in range(len(fine))])
    reach = np.array([np.interp(theta[k], angles, length[:, k]) for k in range(len(fine))])
    k = int(np.argmin(np.abs(reach - np.linalg.norm(disp))))
    th = np.radians(theta[k])
    return np.array([-np.cos(th) if back else np.cos(th), np.sin(th)]), float(fine[k]), float(reach[k])


class SlideExpert:
    """Get behind the puck at rest, strike it with the planned strength, wait for it to stop; strike again if short.

    Keeps the strike's phase across steps: make one per episode (``run_episode`` does).
    """

    def __init__(self) -> None:
        self.strike: tuple[np.ndarray, float] | None = None
        self.k = 0

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        o, goal = obs["observation"], obs["desired_goal"]
        grip, obj = o[0:3], o[3:6]
        if self.strike is not None:
            self.k += 1
            if self.k <= STRIKE_STEPS + 3:
                return strike_action(o, *self.strike, self.k)
            self.strike = None
        d = goal[:2] - obj[:2]
        dist = np.linalg.norm(d)
        if dist < 0.04:
            # Inside the 5 cm success radius: a strike this short would as likely knock it out again.
            return _action([0.0, 0.0, STRIKE_HEIGHT - grip[2]], 0.0)
        velocity = o[14:16] + o[20:22]  # the puck's own, not relative to the gripper
        if np.linalg.norm(velocity) > 5e-4:
            # Sliding: follow it, standing off behind it along its motion (never in its way), so that a second
            # strike can start soon after it stops.
            return _go_behind(grip, obj, velocity / np.linalg.norm(velocity))
        u, s, reach = plan_strike(d)
        if reach < dist - 0.03:
            # Beyond the strongest strike (about 0.65 m along an axis): first a short one along the line that
            # leaves the puck within the strongest strike's reach, and in the gripper's.
            u, s, _ = plan_strike(d * max(dist - reach + 0.05, 0.06) / dist)
        settled = np.linalg.norm(o[20:23]) < 0.002 and abs(STRIKE_HEIGHT - grip[2]) < 0.005
        if settled and np.linalg.norm(obj[:2] - STRIKE_STANDOFF * u - grip[:2]) < PLACE_TOL:
            self.strike, self.k = (u, s), 1
            return strike_action(o, u, s, 1)
        return _go_behind(grip, obj, u)


def _go_behind(grip: np.ndarray, obj: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Head for STRIKE_STANDOFF behind the puck along ``u``, at strike height, without touching the puck."""
    behind = obj[:2] - STRIKE_STANDOFF * u
    xy = APPROACH_GAIN / GAIN * (_around(grip[:2], obj[:2], u, behind) - grip[:2])
    return _action([*xy, STRIKE_HEIGHT - grip[2]], 0.0)


def _around(grip: np.ndarray, obj: np.ndarray, u: np.ndarray, behind: np.ndarray) -> np.ndarray:
    """Where to head for on the way to ``behind``: straight there, or via a point beside the puck if it is in the way.

    Going round at table height is quicker than rising over the puck and coming down again.
    """
    if _segment_distance(grip, behind, obj) >= PUCK_CLEARANCE:
        return behind
    normal = np.array([-u[1], u[0]])
    # Beside and a little behind the puck: from there the way to ``behind`` is clear. Take the nearer side the
    # gripper can reach without touching the puck; if neither, first back away from the puck.
    sides = [obj + 0.1 * side * normal - 0.05 * u for side in (1.0, -1.0)]
    clear = [w for w in sides if _segment_distance(grip, w, obj) >= PUCK_CLEARANCE]
    if clear:
        return min(clear, key=lambda w: np.linalg.norm(w - grip))
    away = grip - obj
    return obj + 0.1 * away / max(np.linalg.norm(away), 1e-9)


# ---- FetchStack2 / FetchStack3 (her/fetch_stack.py): pick each block in turn and put it on the tower ----

PLACED = 0.03  # a block this near its place in the tower counts as done (success allows 0.05)
FINGER_DROP = 0.02  # the finger tips hang about this far below the grip site


class StackExpert:
    """PickAndPlace's grasp for each block in order, carried over the tower's top and lowered onto it.

    The blocks' state is read from the observation each step (a dropped or knocked block is picked again);
    the only phase kept is "just released, rising clear", so make one per episode (``run_episode`` does).
    """

    def __init__(self) -> None:
        self.rising = False

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        o, goal = obs["observation"], obs["desired_goal"]
        n = goal.shape[0] // 3
        grip, pos, targets = o[0:3], o[3 : 3 + 3 * n].reshape(n, 3), goal.reshape(n, 3)
        width = o[3 + 6 * n] + o[4 + 6 * n]
        done = np.linalg.norm(pos - targets, axis=1) < PLACED
        todo = np.flatnonzero(~done)
        # Safe height to move sideways at: finger tips above the tower and any block on the table.
        top = max([pos[j, 2] for j in np.flatnonzero(done)] + [pos[:, 2].min()]) + 0.025
        travel_z = top + FINGER_DROP + 0.025
        if self.rising or not len(todo):
            self.rising = self.rising and (grip[2] < travel_z - 0.01 or width < 0.08)
            return _action([0.0, 0.0, travel_z - grip[2]], 1.0)  # fingers open, straight up off the tower
        i = todo[0]
        obj, rel = pos[i], pos[i] - grip
        place = targets[i].copy()
        if i > 0 and done[i - 1]:
            place[:2] = pos[i - 1, :2]  # on the block below as it stands, not where it should have stood
        xy = np.linalg.norm(rel[:2])
        if xy < 0.02 and abs(rel[2]) < 0.02 and 0.02 < width < 0.07:  # holding it
            carry_z = place[2] + 0.06  # the block's bottom 3.5 cm above where it will stand
            e = place - obj
            if np.linalg.norm(e[:2]) > 0.01:
                if obj[2] < carry_z - 0.015:
                    return _action([0.0, 0.0, carry_z - obj[2]], -1.0)  # lift clear before moving sideways
                return _action([*e[:2], carry_z - obj[2]], -1.0)
            if np.linalg.norm(e) < 0.01:
                self.rising = True
                return _action([0.0, 0.0, 0.0], 1.0)  # in place: let go
            return _action(e, -1.0)  # lower it onto the table or the tower
        if xy > 0.01:
            hover = travel_z if xy > 0.02 else obj[2] + 0.05
            err = np.r_[obj[:2] - grip[:2], hover - grip[2]]
            if grip[2] < travel_z - 0.015 and xy > 0.02:
                err[:2] = 0.0  # rise before moving sideways, or the fingers sweep the blocks
            return _action(err, 1.0)
        return _lower_and_grip(rel, width)


# A pure function of the observation, or a class whose instances keep one episode's phase (one per episode).
EXPERTS: dict[str, Callable[[Mapping[str, np.ndarray]], np.ndarray] | type] = {
    "FetchReach": reach_expert,
    "FetchPush": push_expert,
    "FetchPickAndPlace": pick_and_place_expert,
    "FetchSlide": SlideExpert,
    "FetchStack2": StackExpert,
    "FetchStack3": StackExpert,
}
