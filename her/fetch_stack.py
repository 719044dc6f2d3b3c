"""FetchStack: the Fetch arm builds a tower of N blocks at a goal on the table (Nair et al. 2018's stacking task).

Built on gymnasium-robotics' Fetch robot and PickAndPlace table; the scene is ``her/assets/fetch_stack.xml``
filled in at run time with N blocks ``object0..`` and written to a temporary file (the robot's XML is included
from the installed gymnasium-robotics, by absolute path).

* observation (10 + 15 N): grip_pos 3, every block's pos 3N, pos relative to the gripper 3N, gripper_state 2,
  every block's rot 3N, velp 3N (relative to the gripper), velr 3N, grip_velp 3, gripper_vel 2 -- PickAndPlace's
  layout with each per-block field repeated for the blocks in order.
* achieved_goal (3 N): the blocks' positions; desired_goal (3 N): the tower, block 0 on the table at the goal
  xy, block i one block height (5 cm) above block i - 1.
* success: every block within 5 cm of its place in the tower (Nair et al.'s definition: the gripper may still
  hold the top block). ``reward_type`` (an env kwarg, so ``--env_kwargs reward_type=step``): ``sparse``
  -(not success), like Fetch; ``step`` -(number of blocks not in place), the paper's per-block "step" reward
  (theirs is that plus N - 1, a constant); ``dense`` -(sum of the blocks' distances). ``reward_range`` tells the
  learner the lowest reward, from which it bounds its critic targets.
* info: besides ``is_success``, ``placed`` (N,) which blocks are within 5 cm of their place, ``clear`` whether
  no block is within 5 cm of the grip site (the gripper has let go and moved off), and ``standing``, success with
  the gripper clear: a tower that stands on its own. The evaluator logs their means at the last step, so a run
  shows which storey fails and whether its towers stand or are held.
* episode length: 100 steps for 2 blocks, 150 for 3, registered as the time limit. The scripted expert
  (her/fetch_experts.py) holds the finished tower from step 63 (median; 70 at most over 50 episodes) with 2
  blocks and from step 99 (113 at most) with 3: each block is a full pick-and-place (about 20 steps in
  PickAndPlace) plus lifting over the tower, lowering onto it and rising clear. 50 steps a block keeps room for a
  slower learned policy, as PickAndPlace's 50 do for one block, without making every episode (and the replay
  buffer, which grows with T) longer than it needs to be.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
from gymnasium.utils import EzPickle
from gymnasium_robotics.envs.fetch.fetch_env import MujocoFetchEnv
from gymnasium_robotics.utils import rotations

BLOCK = 0.05  # block edge (m): the height of one storey of the tower
TEMPLATE = Path(__file__).with_name("assets") / "fetch_stack.xml"
COLOURS = ["0.8 0.2 0.2 1", "0.2 0.6 0.2 1", "0.2 0.3 0.8 1", "0.8 0.7 0.1 1"]
EPISODE_STEPS = {2: 100, 3: 150}
REWARD_TYPES = ("sparse", "step", "dense")


def scene_xml(n_blocks: int) -> str:
    """Path of the MuJoCo scene with ``n_blocks`` blocks, written into the temp folder unless already there."""
    import gymnasium_robotics

    fetch = Path(gymnasium_robotics.__file__).parent / "envs" / "assets" / "fetch"
    objects = "\n".join(
        f'\t\t<body name="object{i}" pos="0.025 0.025 0.025">\n'
        f'\t\t\t<joint name="object{i}:joint" type="free" damping="0.01"></joint>\n'
        f'\t\t\t<geom size="0.025 0.025 0.025" type="box" condim="3" name="object{i}" material="block_mat" '
        f'rgba="{COLOURS[i % len(COLOURS)]}" mass="2"></geom>\n'
        f'\t\t\t<site name="object{i}" pos="0 0 0" size="0.02 0.02 0.02" rgba="1 0 0 1" type="sphere"></site>\n'
        f"\t\t</body>"
        for i in range(n_blocks)
    )
    targets = "\n".join(
        f'\t\t\t<site name="target{i}" pos="0 0 0.5" size="0.02 0.02 0.02" '
        f'rgba="{COLOURS[i % len(COLOURS)][:-1]}0.5" type="sphere"></site>'
        for i in range(n_blocks)
    )
    xml = TEMPLATE.read_text().format(
        n=n_blocks,
        fetch=fetch,
        stls=fetch.parent / "stls" / "fetch",
        textures=fetch.parent / "textures",
        objects=objects,
        targets=targets,
    )
    # Named by its content, so other gymnasium-robotics installs never share a stale file; written under a
    # temporary name and renamed, so concurrent processes never read a half-written one.
    digest = hashlib.sha1(xml.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"her_fetch_stack{n_blocks}_{digest}.xml"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(xml)
        os.replace(tmp, path)
    return str(path)


class MujocoFetchStackEnv(MujocoFetchEnv, EzPickle):
    """Stack ``n_blocks`` blocks into a tower at a goal on the table (see the module docstring)."""

    def __init__(self, n_blocks: int = 2, reward_type: str = "sparse", **kwargs):
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"FetchStack's reward_type must be one of {', '.join(REWARD_TYPES)}, got {reward_type!r}")
        self.n_blocks = n_blocks
        lowest = {"sparse": -1.0, "step": -float(n_blocks), "dense": -np.inf}[reward_type]
        self.reward_range = (lowest, 0.0)
        initial_qpos = {
            "robot0:slide0": 0.405,
            "robot0:slide1": 0.48,
            "robot0:slide2": 0.0,
            **{f"object{i}:joint": [1.25, 0.53 + 0.06 * i, 0.4, 1.0, 0.0, 0.0, 0.0] for i in range(n_blocks)},
        }
        self._goal_xy = np.zeros(2)
        MujocoFetchEnv.__init__(
            self,
            model_path=scene_xml(n_blocks),
            has_object=True,
            block_gripper=False,
            n_substeps=20,
            gripper_extra_height=0.2,
            target_in_the_air=False,
            target_offset=0.0,
            obj_range=0.15,
            target_range=0.15,
            distance_threshold=0.05,
            initial_qpos=initial_qpos,
            reward_type=reward_type,
            **kwargs,
        )
        EzPickle.__init__(self, n_blocks=n_blocks, reward_type=reward_type, **kwargs)

    # ---- goals and reward, vectorised over leading batch dimensions (HER relabels batches) ----

    def _block_distances(self, achieved_goal: np.ndarray, goal: np.ndarray) -> np.ndarray:
        a = np.asarray(achieved_goal).reshape(*np.shape(achieved_goal)[:-1], self.n_blocks, 3)
        g = np.asarray(goal).reshape(*np.shape(goal)[:-1], self.n_blocks, 3)
        return np.linalg.norm(a - g, axis=-1)

    def compute_reward(self, achieved_goal, goal, info):
        d = self._block_distances(achieved_goal, goal)
        if self.reward_type == "sparse":
            return -np.any(d > self.distance_threshold, axis=-1).astype(np.float32)
        if self.reward_type == "step":
            return -np.sum(d > self.distance_threshold, axis=-1).astype(np.float32)
        return -d.sum(axis=-1)

    def compute_terminated(self, achieved_goal, desired_goal, info):
        # The library's step() builds info and hands it here before returning it: the one place to add to it
        # without overriding step(), which her.sim_state must be able to replay exactly (demo-state resets).
        info["placed"] = (self._block_distances(achieved_goal, desired_goal) < self.distance_threshold).astype(
            np.float32
        )
        grip = self._utils.get_site_xpos(self.model, self.data, "robot0:grip")
        blocks = np.asarray(achieved_goal).reshape(self.n_blocks, 3)
        info["clear"] = float(np.all(np.linalg.norm(blocks - grip, axis=-1) >= BLOCK))
        info["standing"] = float(info["is_success"]) * info["clear"]  # the tower done and let go of
        return super().compute_terminated(achieved_goal, desired_goal, info)

    def _is_success(self, achieved_goal, desired_goal):
        return np.all(self._block_distances(achieved_goal, desired_goal) < self.distance_threshold, axis=-1).astype(
            np.float32
        )

    def _sample_goal(self):
        storeys = np.arange(self.n_blocks)[:, None] * np.array([0.0, 0.0, BLOCK])
        return (np.r_[self._goal_xy, self.height_offset] + storeys).ravel()

    # ---- simulation ----

    def _reset_sim(self):
        self._mujoco.mj_resetData(self.model, self.data)
        self.data.time = self.initial_time
        self.data.qpos[:] = np.copy(self.initial_qpos)
        self.data.qvel[:] = np.copy(self.initial_qvel)
        if self.model.na != 0:
            self.data.act[:] = None
        # The goal is drawn here with the blocks, so that they keep clear of it (``_sample_goal`` builds the tower).
        self._goal_xy, blocks = self._sample_layout()
        for i, xy in enumerate(blocks):
            qpos = self._utils.get_joint_qpos(self.model, self.data, f"object{i}:joint")
            qpos[:2] = xy
            self._utils.set_joint_qpos(self.model, self.data, f"object{i}:joint", qpos)
        self._mujoco.mj_forward(self.model, self.data)
        return True

    def _sample_layout(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Goal xy and block xys: blocks 10 cm from each other, from the goal and from under the gripper."""
        centre = self.initial_gripper_xpos[:2]
        while True:  # a whole new layout when one block finds no room (possible with 3 blocks), never a dead end
            goal = centre + self.np_random.uniform(-self.target_range, self.target_range, size=2)
            placed = [centre, goal]
            for _ in range(self.n_blocks):
                for _ in range(100):
                    xy = centre + self.np_random.uniform(-self.obj_range, self.obj_range, size=2)
                    if min(np.linalg.norm(xy - p) for p in placed) >= 0.1:
                        placed.append(xy)
                        break
            if len(placed) == 2 + self.n_blocks:
                return goal, placed[2:]

    def _get_obs(self):
        m, d, u = self.model, self.data, self._utils
        dt = self.n_substeps * m.opt.timestep
        grip_pos = u.get_site_xpos(m, d, "robot0:grip").copy()
        grip_velp = u.get_site_xvelp(m, d, "robot0:grip") * dt
        robot_qpos, robot_qvel = u.robot_get_obs(m, d, self._model_names.joint_names)
        names = [f"object{i}" for i in range(self.n_blocks)]
        pos = np.stack([u.get_site_xpos(m, d, name) for name in names])
        rot = np.stack([rotations.mat2euler(u.get_site_xmat(m, d, name)) for name in names])
        velp = np.stack([u.get_site_xvelp(m, d, name) * dt for name in names]) - grip_velp
        velr = np.stack([u.get_site_xvelr(m, d, name) * dt for name in names])
        obs = np.concatenate(
            [
                grip_pos,
                pos.ravel(),
                (pos - grip_pos).ravel(),
                robot_qpos[-2:],
                rot.ravel(),
                velp.ravel(),
                velr.ravel(),
                grip_velp,
                robot_qvel[-2:] * dt,
            ]
        )
        return {"observation": obs, "achieved_goal": pos.ravel(), "desired_goal": self.goal.copy()}

    def _render_callback(self):
        offset = (self.data.site_xpos - self.model.site_pos).copy()
        for i, place in enumerate(self.goal.reshape(-1, 3)):
            site = self._mujoco.mj_name2id(self.model, self._mujoco.mjtObj.mjOBJ_SITE, f"target{i}")
            self.model.site_pos[site] = place - offset[site]
        self._mujoco.mj_forward(self.model, self.data)
