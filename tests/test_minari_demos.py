"""Minari datasets: demos exported and imported without changing a bit, read by training like a demo file."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import warnings
import zipfile

import minari  # an optional extra of the package, but part of the test environment: never skipped
import numpy as np
import pytest
from conftest import tiny_run
from test_demo import episodes

from her import demo_convert, minari_demos
from her.demo import DemoFileError, load_demos, save_demos
from her.demos_cli import main as her_demos

ENV = "FetchPush-v4"
T = 5
DIMS = {"o": 25, "g": 3, "u": 4}


@pytest.fixture(autouse=True)
def datasets(tmp_path, monkeypatch):
    """Each test its own Minari store, never the user's ~/.minari."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def demo_arrays(n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    states = {
        "state/qpos": rng.normal(size=(n, T + 1, 22)),
        "state/time": rng.normal(size=(n, T + 1, 1)),
        "state/act": np.zeros((n, T + 1, 0)),
        "state/goal": rng.normal(size=(n, T + 1, 3)),
    }
    return {**episodes(n), **states}


def test_export_then_import_gives_back_every_array_and_key(tmp_path):
    source, back = tmp_path / "demos.npz", tmp_path / "back.npz"
    save_demos(source, demo_arrays(), ENV)
    assert demo_convert.export_demos(source, "her/FetchPush/test-v0")[:2] == (3, ENV)
    assert demo_convert.import_demos("her/FetchPush/test-v0", back) == (3, ENV)
    with np.load(source) as a, np.load(back) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_dataset_holds_what_a_minari_user_expects(tmp_path):
    data = demo_arrays()
    save_demos(tmp_path / "demos.npz", data, ENV)
    demo_convert.export_demos(tmp_path / "demos.npz", "her/FetchPush/test-v0")
    dataset = minari.load_dataset("her/FetchPush/test-v0")
    assert dataset.total_episodes == 3 and dataset.total_steps == 3 * T
    assert dataset.spec.env_spec.id == ENV
    episode = next(iter(dataset.iterate_episodes()))
    assert set(episode.observations) == {"observation", "achieved_goal", "desired_goal"}
    np.testing.assert_array_equal(episode.observations["observation"], data["o"][0])
    # The last observation's goal repeats the last step's: Fetch goals are fixed within an episode.
    goals = np.concatenate([data["g"][0], data["g"][0, -1:]])
    np.testing.assert_array_equal(episode.observations["desired_goal"], goals)
    np.testing.assert_array_equal(episode.actions, data["u"][0])
    # Fetch's sparse reward of each step: -1 unless the achieved goal is within 5 cm of the goal.
    far = np.linalg.norm(data["ag"][0, 1:] - data["g"][0], axis=-1) > 0.05
    np.testing.assert_array_equal(episode.rewards, -far.astype(float))
    assert episode.truncations.tolist() == [False] * (T - 1) + [True] and not episode.terminations.any()
    assert episode.infos["is_success"].shape == (T + 1,)  # one per observation, the reset's first
    np.testing.assert_array_equal(episode.infos["is_success"][1:], data["info_is_success"][0, :, 0])
    np.testing.assert_array_equal(episode.infos["sim_state"]["qpos"], data["state/qpos"][0])


@pytest.mark.parametrize("need_states", [False, True])
def test_training_reads_a_dataset_by_id_or_folder_as_it_reads_the_file(tmp_path, datasets, need_states):
    data = demo_arrays()
    save_demos(tmp_path / "demos.npz", data, ENV)
    demo_convert.export_demos(tmp_path / "demos.npz", "her/FetchPush/test-v0")
    kwargs = dict(env_id=ENV, dims=DIMS, T=T, num_demo=2, need_states=need_states)
    from_file = load_demos(tmp_path / "demos.npz", **kwargs)
    for source in (
        "her/FetchPush/test-v0",
        datasets / "her/FetchPush/test-v0",
        datasets / "her/FetchPush/test-v0" / "data",
    ):
        from_dataset = load_demos(source, **kwargs)
        assert set(from_dataset) == set(from_file)
        for key, array in from_file.items():
            assert from_dataset[key].dtype == array.dtype
            np.testing.assert_array_equal(from_dataset[key], array)


def test_the_dataset_is_checked_like_a_file(tmp_path):
    save_demos(tmp_path / "demos.npz", episodes(2), ENV)
    demo_convert.export_demos(tmp_path / "demos.npz", "her/FetchPush/test-v0")
    with pytest.raises(DemoFileError, match="holds demonstrations for FetchPush-v4, but this run is on FetchReach"):
        load_demos("her/FetchPush/test-v0", env_id="FetchReach-v4", dims={"o": 10, "g": 3, "u": 4}, T=T, num_demo=1)
    with pytest.raises(DemoFileError, match="holds 2 episodes but num_demo is 3"):
        load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=3)
    with pytest.raises(DemoFileError, match="is a version-1 demo file"):  # exported without states
        load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=1, need_states=True)


def test_a_missing_dataset_names_the_store_and_the_download_command(datasets):
    with pytest.raises(minari_demos.MinariError) as info:
        load_demos("her/FetchPush/absent-v0", env_id=ENV, dims=DIMS, T=T, num_demo=1)
    assert str(info.value) == (
        f"no Minari dataset her/FetchPush/absent-v0 in {datasets}: list the local ones with "
        "minari list local, or download it with minari download her/FetchPush/absent-v0"
    )
    # A missing .npz is still a missing file, not a dataset.
    with pytest.raises(DemoFileError, match="does not exist"):
        load_demos("absent-v0.npz", env_id=ENV, dims=DIMS, T=T, num_demo=1)


def test_ids_that_are_malformed_or_taken_are_refused(tmp_path):
    save_demos(tmp_path / "demos.npz", episodes(1), ENV)
    with pytest.raises(minari_demos.MinariError, match="is not a Minari dataset id"):
        demo_convert.export_demos(tmp_path / "demos.npz", "her/FetchPush/expert-0.1-v0")
    demo_convert.export_demos(tmp_path / "demos.npz", "her/FetchPush/test-v0")
    with pytest.raises(minari_demos.MinariError, match="exists already"):
        demo_convert.export_demos(tmp_path / "demos.npz", "her/FetchPush/test-v0")


def buffer(T: int, goal_obs: bool = True):
    from minari.data_collector import EpisodeBuffer

    obs = (
        {
            "observation": np.zeros((T + 1, 25)),
            "achieved_goal": np.zeros((T + 1, 3)),
            "desired_goal": np.zeros((T + 1, 3)),
        }
        if goal_obs
        else np.zeros((T + 1, 25))
    )
    return EpisodeBuffer(
        observations=obs,
        actions=np.zeros((T, 4), np.float32),
        rewards=np.zeros(T),
        terminations=np.zeros(T, bool),
        truncations=np.zeros(T, bool),
        infos={"is_success": np.zeros(T + 1)},
    )


@pytest.mark.filterwarnings("ignore::UserWarning")  # Minari's advice on metadata a test dataset does not need
@pytest.mark.parametrize(
    "buffers, expected",
    [
        ([buffer(5), buffer(4)], "has episodes of 5 and 4 steps, and demos need one length"),
        ([buffer(5, goal_obs=False)], "does not hold goal observations"),
    ],
)
def test_datasets_made_elsewhere_that_cannot_be_demos(buffers, expected):
    import gymnasium as gym

    space = gym.spaces.Dict(
        {
            key: gym.spaces.Box(-np.inf, np.inf, (size,))
            for key, size in (("observation", 25), ("achieved_goal", 3), ("desired_goal", 3))
        }
    )
    minari.create_dataset_from_buffers(
        "other/x-v0",
        buffers,
        action_space=gym.spaces.Box(-1, 1, (4,)),
        algorithm_name="test",
        description="test",
        observation_space=space if isinstance(buffers[0].observations, dict) else gym.spaces.Box(-1, 1, (25,)),
    )
    with pytest.raises(minari_demos.MinariError, match=expected):
        load_demos("other/x-v0", env_id=ENV, dims=DIMS, T=T, num_demo=len(buffers))


def test_without_minari_installed_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "minari", None)  # import minari raises ImportError
    with pytest.raises(minari_demos.MinariError, match=r"pip install 'her-tf2\[minari\]'"):
        load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=1)


def test_her_demos_writes_the_same_demos_as_a_dataset_as_it_writes_to_a_file(tmp_path, capsys):
    args = ["--env", "FetchReach", "--num_episodes", "2", "--seed", "3", "--noise", "0.1"]
    assert her_demos([*args, "--output", str(tmp_path / "direct.npz")]) == 0
    assert her_demos([*args, "--format", "minari"]) == 0
    assert "as Minari dataset her/FetchReach/expert-2-v0" in capsys.readouterr().out
    assert her_demos(["--convert", "her/FetchReach/expert-2-v0", "--output", str(tmp_path / "back.npz")]) == 0
    with np.load(tmp_path / "direct.npz") as a, np.load(tmp_path / "back.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # A second write to the id is refused before any episode is generated.
    assert her_demos([*args, "--format", "minari"]) == 2
    assert capsys.readouterr().err.startswith("error: Minari dataset her/FetchReach/expert-2-v0 exists already")
    assert her_demos(["--convert", str(tmp_path / "direct.npz")]) == 2
    assert "needs --output DATASET_ID" in capsys.readouterr().err


def test_a_run_on_the_dataset_is_the_run_on_the_file(tmp_path):
    from her.config import build_config
    from her.experts import generate
    from her.train import train

    save_demos(tmp_path / "pick.npz", generate("FetchPickAndPlace-v4", 3, seed=0).episodes, "FetchPickAndPlace-v4")
    demo_convert.export_demos(tmp_path / "pick.npz", "her/FetchPickAndPlace/test-v0")
    base = tiny_run(env="FetchPickAndPlace", num_demo=3, batch_size=48, demo_batch_size=16, demo_reset_p=0.5)
    rows = [
        train(build_config({**base, "demo_file": source, "log_path": tmp_path / name}))
        for name, source in (("file", tmp_path / "pick.npz"), ("dataset", "her/FetchPickAndPlace/test-v0"))
    ]
    untimed = [[{k: v for k, v in row.items() if not k.startswith("time/")} for row in run] for run in rows]
    assert untimed[0] == untimed[1]


# ---- damaged, foreign or unreachable data: one line each ----


def exported(tmp_path, n: int = 2, dataset_id: str = "her/FetchPush/test-v0"):
    save_demos(tmp_path / "demos.npz", demo_arrays(n), ENV)
    return demo_convert.export_demos(tmp_path / "demos.npz", dataset_id)[2]


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path):
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def claim_more_episodes(path):
    meta_path = path.with_name("metadata.json")
    meta = json.loads(meta_path.read_text())
    meta["total_episodes"] = 5
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, num_demo, expected",
    [
        (truncate, 2, "cannot be read (OSError"),
        (garbage, 2, "cannot be read (OSError"),
        (claim_more_episodes, 3, "cannot be read (KeyError"),
    ],
)
def test_a_damaged_dataset_is_one_line(tmp_path, capsys, damage, num_demo, expected):
    folder = exported(tmp_path)
    damage(folder / "data" / "main_data.hdf5")
    with pytest.raises(minari_demos.MinariError, match=re.escape(expected)):
        load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=num_demo)
    assert her_demos(["--convert", "her/FetchPush/test-v0", "--output", str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Minari dataset her/FetchPush/test-v0 ") and err.count("\n") == 1
    assert not (tmp_path / "out.npz").exists()


def test_observations_of_mixed_sizes_are_one_line():
    import gymnasium as gym

    mixed = buffer(T)
    mixed.observations["observation"] = np.zeros((T + 1, 24))
    space = gym.spaces.Dict(
        {
            key: gym.spaces.Box(-np.inf, np.inf, (size,))
            for key, size in (("observation", 25), ("achieved_goal", 3), ("desired_goal", 3))
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            "other/x-v0",
            [buffer(T), mixed],
            action_space=gym.spaces.Box(-1, 1, (4,)),
            observation_space=space,
            algorithm_name="test",
            description="test",
        )
    with pytest.raises(minari_demos.MinariError, match=r"'o' is \(6, 24\) in episode 1 but \(6, 25\) in episode 0"):
        load_demos("other/x-v0", env_id=ENV, dims=DIMS, T=T, num_demo=2)


def test_a_minari_store_that_cannot_be_created_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "a_file" / "store"))
    with pytest.raises(minari_demos.MinariError, match="cannot be created .*: set MINARI_DATASETS_PATH to a folder"):
        load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=1)
    assert her_demos(["--env", "FetchReach", "--num_episodes", "1", "--format", "minari"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the Minari store ") and err.count("\n") == 1


def npz_with(tmp_path, member: str, data: bytes):
    path = tmp_path / "odd.npz"
    save_demos(path, episodes(2), ENV)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(member, data)
    return path


def huge_npy() -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 4)})
    return header.getvalue() + b"\0" * 64


@pytest.mark.parametrize(
    "member, data, expected",
    [
        ("notes.txt", b"hello", "member notes.txt is not an .npy array"),
        ("o2.npy", huge_npy(), "claims shape (1000000000000, 4)"),
    ],
)
def test_convert_refuses_npz_members_that_are_no_arrays_or_claim_too_much(tmp_path, capsys, member, data, expected):
    source = npz_with(tmp_path, member, data)
    assert her_demos(["--convert", str(source), "--output", "her/FetchPush/test-v0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {source} is not a demo file") and expected in err and err.count("\n") == 1
    assert not (minari_demos._local_path("her/FetchPush/test-v0")).exists()


def test_num_demo_bounds_what_is_read_of_a_dataset(tmp_path):
    import h5py

    folder = exported(tmp_path, n=4)
    with h5py.File(folder / "data" / "main_data.hdf5", "a") as data:
        del data["episode_3"]  # were it read, the dataset would be damaged
    demos = load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=2)
    assert demos["u"].shape == (2, T, 4)
    with pytest.raises(minari_demos.MinariError, match="cannot be read"):
        load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=4)


# ---- a dataset is written whole or not at all ----


def test_a_failed_write_leaves_nothing_under_the_id(tmp_path, datasets, monkeypatch, capsys):
    def full_disk(*args, **kwargs):
        staged = minari_demos._local_path(args[0]) / "data"  # the staging store, while the write goes on
        staged.mkdir(parents=True)
        (staged / "metadata.json").write_text('{"total_episodes": 0}')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(minari, "create_dataset_from_buffers", full_disk)
    save_demos(tmp_path / "demos.npz", demo_arrays(2), ENV)
    assert her_demos(["--convert", str(tmp_path / "demos.npz"), "--output", "her/FetchPush/test-v0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write Minari dataset her/FetchPush/test-v0") and err.count("\n") == 1
    assert not (datasets / "her/FetchPush/test-v0").exists()
    assert [p.name for p in datasets.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_too_little_space_is_refused_before_writing(tmp_path, datasets, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 1000))
    assert her_demos(["--env", "FetchReach", "--num_episodes", "2", "--format", "minari"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the Minari store ") and "MiB free" in err and err.count("\n") == 1
    assert not (datasets / "her/FetchReach/expert-2-v0").exists()


def test_of_two_writers_of_one_id_the_first_keeps_its_dataset(tmp_path, datasets, monkeypatch):
    first = exported(tmp_path)
    before = load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=2)
    # The second writer checked the id before the first had finished: its check passed.
    monkeypatch.setattr(minari_demos, "check_new_id", lambda dataset_id: first)
    save_demos(tmp_path / "other.npz", episodes(3), ENV)
    with pytest.raises(minari_demos.MinariError, match="written meanwhile by another process"):
        demo_convert.export_demos(tmp_path / "other.npz", "her/FetchPush/test-v0")
    after = load_demos("her/FetchPush/test-v0", env_id=ENV, dims=DIMS, T=T, num_demo=2)
    for key, array in before.items():
        np.testing.assert_array_equal(after[key], array)
    assert [p.name for p in datasets.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "args",
    [
        ["--env", "FetchReach", "--num_episodes", "1", "--output", "{long}.npz"],
        ["--convert", "{long}.npz", "--output", "her/FetchReach/x-v0"],
        ["--convert", "her/FetchReach/x-v0", "--output", "{long}.npz"],
    ],
)
def test_her_demos_paths_with_a_name_too_long_are_one_line(tmp_path, capsys, args):
    long = str(tmp_path / ("a" * 300))
    assert her_demos([arg.format(long=long) for arg in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --") and "is 304 bytes long, more than the 255" in err and err.count("\n") == 1


WRITE_ON_A_FULL_DISK = """
import sys
from her import minari_demos
from her.demos_cli import main
if sys.argv[1] == "unchecked":  # as before the space check: HDF5 meets the full disk itself
    minari_demos._check_space = lambda root, episodes: None
sys.exit(main(["--env", "FetchReach", "--num_episodes", "40", "--format", "minari", "--output", "her/x/full-v0"]))
"""


@pytest.mark.slow  # generates 40 episodes in two processes
def test_on_a_really_full_disk_nothing_appears_under_the_id(tmp_path):
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a small disk is a tmpfs mounted in a mount namespace of its own, which needs root")
    store = tmp_path / "small"
    store.mkdir()
    (tmp_path / "write.py").write_text(WRITE_ON_A_FULL_DISK)
    results = {}
    for mode in ("checked", "unchecked"):
        command = (
            f"mount -t tmpfs -o size=150k tmpfs {store} && {sys.executable} {tmp_path / 'write.py'} {mode}; "
            f"code=$?; ls -AR {store}/her 2>/dev/null; exit $code"
        )
        results[mode] = subprocess.run(
            ["unshare", "--mount", "sh", "-c", command],
            capture_output=True,
            text=True,
            env={**os.environ, "MINARI_DATASETS_PATH": str(store)},
            cwd=tmp_path,
            timeout=600,
        )
    checked, unchecked = results["checked"], results["unchecked"]
    assert checked.returncode == 1 and checked.stdout == ""  # nothing under her/
    assert (
        checked.stderr.startswith(f"error: the Minari store {store} has 0 MiB free") and checked.stderr.count("\n") == 1
    )
    # Unchecked, HDF5 crashes the process (or fails): the dataset never appears under its id even so.
    assert unchecked.returncode != 0 and "full-v0" not in unchecked.stdout
