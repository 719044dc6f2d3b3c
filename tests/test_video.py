"""her.video: the offscreen GL backend's choice and the video file, without rendering anything."""

from __future__ import annotations

import numpy as np
import pytest

from her.video import PlayError, VideoWriter, choose_offscreen_gl


def test_offscreen_backend_choice():
    libs = {"EGL", "OSMesa"}
    loadable = lambda name: name in libs  # noqa: E731

    environ = {}
    assert choose_offscreen_gl(environ, loadable) == "egl" and environ["MUJOCO_GL"] == "egl"
    environ = {"MUJOCO_GL": "osmesa"}  # the user's choice is kept
    assert choose_offscreen_gl(environ, loadable) == "osmesa"
    environ = {"PYOPENGL_PLATFORM": "osmesa"}  # mujoco.egl would refuse this platform
    assert choose_offscreen_gl(environ, loadable) == "osmesa"
    libs.discard("EGL")
    environ = {}
    assert choose_offscreen_gl(environ, loadable) == "osmesa"
    libs.clear()
    with pytest.raises(PlayError, match="apt-get install -y libegl1 libgl1 libegl-mesa0 libosmesa6"):
        choose_offscreen_gl({}, loadable)


class Env:
    def __init__(self, fails: bool):
        self.fails = fails

    def render(self):
        if self.fails:
            raise RuntimeError("no context")
        return np.full((16, 16, 3), 200, np.uint8)


def test_a_first_frame_that_fails_says_what_to_install_and_a_later_one_raises_as_is(tmp_path, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    writer = VideoWriter(tmp_path / "out.gif", fps=25)
    with pytest.raises(
        PlayError,
        match=r"^offscreen rendering with MUJOCO_GL=egl failed \(RuntimeError: no "
        r"context\); install `apt-get install -y libegl1",
    ):
        writer.capture(Env(fails=True))
    writer.capture(Env(fails=False))
    with pytest.raises(RuntimeError, match="no context"):
        writer.capture(Env(fails=True))
    writer.commit()
    assert writer.frames == 1 and [p.name for p in tmp_path.iterdir()] == ["out.gif"]


def test_an_aborted_video_leaves_no_file(tmp_path):
    writer = VideoWriter(tmp_path / "out.gif", fps=25)
    writer.capture(Env(fails=False))
    writer.abort()
    assert list(tmp_path.iterdir()) == []
