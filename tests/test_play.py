"""her.play: a tiny untrained FetchReach policy is played into a video; errors are one clear line."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from her import envs, policy_file
from her import play as play_module
from her.config import build_config
from her.play import PlayError, play
from her.video import choose_offscreen_gl

N_EPISODES = 2


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    """A log folder holding policy_best.npz of an untrained 1x16 FetchReach DDPG."""
    from her.parts import make_learner

    folder = tmp_path_factory.mktemp("run")
    config = build_config({"env": "FetchReach", "hidden": 16, "layers": 1, "log_path": str(folder)})
    env = envs.make_env(config.env_id, seed=0)
    dims = envs.env_dims(env)
    env.close()
    learner = make_learner(config, dims)
    policy_file.save_policy(
        folder / "policy_best.npz",
        network_state=learner.network_state(),
        config=config.to_dict(),
        dims=dims,
        epoch=0,
        test_success_rate=0.0,
    )
    return folder, config.T


def offscreen_gl_or_skip():
    """Skip where no offscreen GL library loads; fail instead under CI (``CI`` set), which installs EGL and
    OSMesa (.ci/run), so that the video path can never go unchecked there."""
    try:
        choose_offscreen_gl()
    except PlayError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to render offscreen: {e}")
        pytest.skip(str(e))


def read_frames(path):
    import imageio.v2 as imageio

    with imageio.get_reader(path) as reader:
        return [np.asarray(frame) for frame in reader]


def check_frames(frames, n_expected):
    assert len(frames) == n_expected
    for frame in frames[:: max(1, len(frames) // 5)]:
        rgb = frame[..., :3].astype(np.float64)
        assert rgb.std() > 10.0, "blank frame"
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20, "frame of almost one colour"


@pytest.mark.gl
def test_mp4_video_has_one_frame_per_reset_and_step(policy_dir, tmp_path, capsys):
    offscreen_gl_or_skip()
    folder, T = policy_dir
    out = tmp_path / "out.mp4"
    result = play(str(folder), n_episodes=N_EPISODES, video=str(out), seed=3)

    assert result["env_id"] == "FetchReach-v4"
    assert len(result["successes"]) == N_EPISODES and len(result["returns"]) == N_EPISODES
    assert all(s in (0.0, 1.0) for s in result["successes"])
    assert all(-T <= r <= 0 for r in result["returns"])
    assert result["success_rate"] == pytest.approx(np.mean(result["successes"]))
    assert result["frames"] == N_EPISODES * (T + 1)
    check_frames(read_frames(out), N_EPISODES * (T + 1))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary file left behind

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:N_EPISODES]] == [f"episode {i}" for i in range(N_EPISODES)]
    assert lines[N_EPISODES].startswith("success rate")


@pytest.mark.gl
def test_gif_video_and_policy_file_path_and_determinism(policy_dir, tmp_path):
    offscreen_gl_or_skip()
    folder, T = policy_dir
    out = tmp_path / "out.gif"
    first = play(str(folder / "policy_best.npz"), env="FetchReach-v4", n_episodes=1, video=str(out), seed=3)
    check_frames(read_frames(out), T + 1)
    again = play(str(folder), env="FetchReach", n_episodes=1, seed=3, render=False)
    assert again["returns"] == first["returns"] and again["successes"] == first["successes"]
    assert again["frames"] == 0 and again["video"] is None


def test_env_mismatch_names_both_tasks(policy_dir):
    folder, _ = policy_dir
    with pytest.raises(policy_file.PolicyFileError) as e:
        play(str(folder), env="FetchPush", n_episodes=1)
    message = str(e.value)
    assert "FetchReach-v4" in message and "FetchPush-v4" in message and "\n" not in message


@pytest.mark.parametrize("name", ["out.avi", "out", "out.mp4.txt"])
def test_bad_video_extension_is_refused_before_any_work(tmp_path, name):
    # The policy path does not even exist: the video name is checked first.
    with pytest.raises(PlayError, match=r"must end in \.mp4 or \.gif"):
        play(str(tmp_path / "missing.npz"), video=str(tmp_path / name))
    assert list(tmp_path.iterdir()) == []


def test_unknown_task_and_missing_policy_are_one_line_errors(policy_dir, tmp_path):
    folder, _ = policy_dir
    with pytest.raises(PlayError, match="unknown task"):
        play(str(folder), env="NoSuchTask", n_episodes=1)
    with pytest.raises(policy_file.PolicyFileError, match="without policy_best.npz"):
        play(str(tmp_path), n_episodes=1)
    with pytest.raises(PlayError, match="n_episodes"):
        play(str(folder), n_episodes=0)


def test_offscreen_gl_or_skip_skips_without_gl_and_fails_under_ci(monkeypatch):
    def no_gl(*args):
        raise PlayError("no offscreen GL")

    monkeypatch.setattr(sys.modules[__name__], "choose_offscreen_gl", no_gl)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no offscreen GL"):
        offscreen_gl_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must be able to render offscreen: no offscreen GL"):
        offscreen_gl_or_skip()


def test_render_mode_choice():
    choose = play_module.choose_render_mode
    display, none = {"DISPLAY": ":0"}, {}
    assert choose(True, None, none) == "rgb_array" and choose(True, True, display) == "rgb_array"
    assert choose(False, None, display) == "human" and choose(False, None, {"WAYLAND_DISPLAY": "w"}) == "human"
    assert choose(False, False, display) is None and choose(False, None, none) is None
    with pytest.raises(PlayError, match="no display"):
        choose(False, True, none)


def test_render_true_without_display_is_refused(policy_dir, monkeypatch):
    folder, _ = policy_dir
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not play_module.has_display()
    with pytest.raises(PlayError, match="no display"):
        play(str(folder), n_episodes=1, render=True)


def test_a_file_that_is_not_a_policy_never_suggests_unpickling(tmp_path):
    (tmp_path / "progress.csv").write_text("epoch,test/success_rate\n0,0.5\n")
    with pytest.raises(policy_file.PolicyFileError) as error:
        play(str(tmp_path / "progress.csv"), n_episodes=1)
    assert str(error.value) == f"{tmp_path / 'progress.csv'} is not a readable policy file: it is not an .npz archive"


def test_play_acts_through_the_policy_loader_without_tensorflow(policy_dir):
    # --play goes through her.policy (numpy only); the old path built the TensorFlow DDPG to act.
    import subprocess
    import sys
    from pathlib import Path

    folder, _ = policy_dir
    script = (
        "import sys\nfrom her.run import cli\n"
        f"code = cli(['--play', '--load_path', {str(folder)!r}, '--n_episodes', '1', '--render', '0'])\n"
        "assert code == 0, code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("episode 0:") and lines[1].startswith("success rate")
    assert lines[-1] == "[]"


def test_a_policy_with_nan_weights_or_a_bad_record_is_refused_in_one_line(policy_dir, tmp_path):
    folder, _ = policy_dir
    arrays, meta = policy_file.read_policy(folder / "policy_best.npz")
    name = next(key for key in arrays if key.startswith("actor/"))
    nan = tmp_path / "nan.npz"
    policy_file.save_policy(
        nan,
        network_state={**arrays, name: np.full_like(arrays[name], np.nan)},
        config=meta["config"],
        dims=meta["dims"],
        epoch=0,
    )
    with pytest.raises(policy_file.PolicyFileError, match=f"holds NaN or infinite values in {name}: it cannot act"):
        play(str(nan), n_episodes=1, render=False)
    odd = tmp_path / "odd.npz"
    policy_file.save_policy(
        odd, network_state=arrays, config={**meta["config"], "env_kwargs": 5}, dims=meta["dims"], epoch=0
    )
    with pytest.raises(
        policy_file.PolicyFileError,
        match="records a configuration that cannot be used: env_kwargs must be key=value pairs or a JSON object, got 5",
    ):
        play(str(odd), n_episodes=1, render=False)


LONG_NAME = "a" * 300  # a path component longer than the 255 bytes a file system allows


@pytest.mark.parametrize("command", ["run", "her-play"])
def test_a_load_path_with_a_name_too_long_is_one_line(tmp_path, capsys, command):
    from her.run import cli, main, play_main

    path = str(tmp_path / f"{LONG_NAME}.npz")
    args = ["--play", "--load_path", path] if command == "run" else ["--load_path", path]
    assert cli(args, command=main if command == "run" else play_main) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: --load_path: the name aaaaaaaaaaaaaaaaaaaa... is 304 bytes long")
        and err.count("\n") == 1
    )
