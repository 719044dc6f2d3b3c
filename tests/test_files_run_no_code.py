"""Nothing read from a file makes the program import a module or build an env the user did not name: a Minari
dataset's env spec, an .npz's or a dataset's env id, a params.json given to --config or --resume. Each file
here is crafted to leave a marker if any code of its choosing runs."""

from __future__ import annotations

import json
import textwrap
import uuid

import pytest
from conftest import cli_args, tiny_run
from test_demo import episodes

from her import demo_convert
from her.config import build_config
from her.demo import save_demos
from her.demos_cli import main as her_demos
from her.run import cli

ENV = "FetchPush-v4"
T = 50


@pytest.fixture(autouse=True)
def datasets(tmp_path, monkeypatch):
    """Each test its own Minari store, never the user's ~/.minari."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a marker file: (its name, the marker's path)."""
    name = f"leaves_a_marker_{uuid.uuid4().hex[:8]}"  # never imported before, in this process
    marker = tmp_path / "imported"
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{name}.py").write_text(
        textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("imported")
    """)
    )
    monkeypatch.syspath_prepend(str(folder))
    return name, marker


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


# ---- Minari datasets ----


def exported(tmp_path, dataset_id: str = "other/FetchPush/crafted-v0"):
    """A dataset of 2 FetchPush demos, and its metadata.json's path and content, for a test to edit."""
    save_demos(tmp_path / "demos.npz", episodes(2, dims={"o": 25, "g": 3, "u": 4}, T=T), ENV)
    folder = demo_convert.export_demos(tmp_path / "demos.npz", dataset_id)[2]
    meta_path = folder / "data" / "metadata.json"
    return folder, meta_path, json.loads(meta_path.read_text())


def dataset_that_runs_a_command(tmp_path, marker):
    """A dataset whose metadata lacks observation_space and whose env spec's entry point is os:system with a
    command: Minari builds that env (runs the command) to learn the missing space."""
    folder, meta_path, meta = exported(tmp_path)
    del meta["observation_space"]
    spec = json.loads(meta["env_spec"])
    spec.update(id="Crafted-v0", entry_point="os:system", kwargs={"command": f"touch {marker}"})
    meta["env_spec"] = json.dumps(spec)
    meta_path.write_text(json.dumps(meta))
    return folder


def test_the_crafted_dataset_does_run_its_command_when_minari_alone_reads_it(tmp_path):
    """The craft itself works: without the project's check, Minari runs the command."""
    from minari.dataset.minari_storage import MinariStorage

    marker = tmp_path / "ran"
    folder = dataset_that_runs_a_command(tmp_path, marker)
    with pytest.raises(TypeError):  # os.system returns an exit status, not an env
        MinariStorage.read(folder / "data")
    assert marker.exists()


@pytest.mark.parametrize("by", ["id", "folder"])
def test_converting_a_dataset_runs_none_of_its_code(tmp_path, datasets, capsys, by):
    marker = tmp_path / "ran"
    folder = dataset_that_runs_a_command(tmp_path, marker)
    source = "other/FetchPush/crafted-v0" if by == "id" else str(folder)
    assert her_demos(["--convert", source, "--output", str(tmp_path / "out.npz")]) == 2
    err = one_line_error(capsys)
    assert "does not record its observation_space" in err and "pass a dataset written with its spaces" in err
    assert not marker.exists() and not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("by", ["id", "folder"])
def test_training_on_a_dataset_runs_none_of_its_code(tmp_path, capsys, by):
    marker = tmp_path / "ran"
    folder = dataset_that_runs_a_command(tmp_path, marker)
    source = "other/FetchPush/crafted-v0" if by == "id" else str(folder)
    run = tiny_run(
        env="FetchPush",
        demo_file=source,
        num_demo=1,
        batch_size=48,
        demo_batch_size=16,
        n_epochs=1,
        log_path=tmp_path / "run",
    )
    assert cli(cli_args(run)) == 2
    assert "does not record its observation_space" in one_line_error(capsys)
    assert not marker.exists()


def test_a_dataset_whose_env_id_names_a_module_is_refused(tmp_path, capsys, marker_module):
    module, marker = marker_module
    folder, meta_path, meta = exported(tmp_path)
    spec = json.loads(meta["env_spec"])
    spec["id"] = f"{module}:FetchPush-v4"  # gym.make would import the module
    meta["env_spec"] = json.dumps(spec)
    meta_path.write_text(json.dumps(meta))
    assert her_demos(["--convert", str(folder), "--output", str(tmp_path / "out.npz")]) == 2
    assert f"names its env '{module}:FetchPush-v4'" in one_line_error(capsys)
    assert not marker.exists() and not (tmp_path / "out.npz").exists()


def test_converting_an_npz_imports_no_module_its_env_id_names(tmp_path, capsys, marker_module):
    module, marker = marker_module
    source = tmp_path / "demos.npz"
    save_demos(source, episodes(2, dims={"o": 10, "g": 3, "u": 4}, T=T), f"{module}:FetchReach-v4")
    assert her_demos(["--convert", str(source), "--output", "her/FetchReach/x-v0"]) == 2
    assert one_line_error(capsys) == (
        f"error: {source} names its env '{module}:FetchReach-v4', and making it would import module {module}; a "
        f"demo file runs no code it names: if you trust it, pass --gym_packages {module}\n"
    )
    assert not marker.exists()
    # Named by the user, the module is imported and the conversion goes ahead.
    assert her_demos(["--convert", str(source), "--output", "her/FetchReach/x-v0", "--gym_packages", module]) == 0
    assert marker.exists()


# ---- params.json: --config and --resume ----


def crafted_params(tmp_path, module: str, key: str) -> dict:
    params = build_config(tiny_run(log_path=tmp_path / "elsewhere")).to_dict()
    if key == "gym_packages":
        params["gym_packages"] = module
    else:
        params["env"] = f"{module}:FetchReach-v4"
    return params


@pytest.mark.parametrize("key", ["gym_packages", "env"])
def test_config_imports_no_module_its_record_names(tmp_path, capsys, marker_module, key):
    module, marker = marker_module
    path = tmp_path / "params.json"
    path.write_text(json.dumps(crafted_params(tmp_path, module, key)))
    assert cli(["--config", str(path), "--log_path", str(tmp_path / "run")]) == 2
    assert one_line_error(capsys) == (
        f"error: the recorded configuration (--config) needs {module} imported to make its env, and a record runs "
        f"no code by itself: if you trust it, pass --gym_packages {module}\n"
    )
    assert not marker.exists() and not (tmp_path / "run").exists()
    # Named on the command line, it is imported.
    assert (
        build_config(
            {"gym_packages": module},
            recorded={
                k: v
                for k, v in crafted_params(tmp_path, module, key).items()
                if k not in ("env_id", "T", "mpi_size", "log_path")
            },
        ).gym_packages
        == module
    )
    assert marker.exists()


@pytest.mark.parametrize("key", ["gym_packages", "env"])
def test_resume_imports_no_module_its_params_json_names(tmp_path, capsys, marker_module, key):
    module, marker = marker_module
    log = tmp_path / "run"
    log.mkdir()
    (log / "params.json").write_text(json.dumps(crafted_params(tmp_path, module, key)))
    assert cli(["--resume", str(log)]) == 2
    assert one_line_error(capsys) == (
        f"error: {log / 'params.json'}: its env needs {module} imported, and a run's record runs no code by "
        f"itself: if you trust it, pass --gym_packages {module}\n"
    )
    assert not marker.exists()
    # Named by --gym_packages, the module is imported and the record read.
    from her.run_folder import resume_config

    assert resume_config(log, gym_packages=module).env_id == "FetchReach-v4"
    assert marker.exists()
