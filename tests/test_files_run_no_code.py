"""Nothing read from a file makes the program import a module or build an env the user did not name: a Minari
dataset's env spec, an .npz's or a dataset's env id, a params.json given to --config or --resume. Each file
here is crafted to leave a marker if any code of its choosing runs."""

from __future__ import annotations

import json
import textwrap
import uuid

import pytest

from conftest import tiny_run
from her.config import build_config
from her.run import cli



@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a marker file: (its name, the marker's path)."""
    name = f"leaves_a_marker_{uuid.uuid4().hex[:8]}"  # never imported before, in this process
    marker = tmp_path / "imported"
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("imported")
    """))
    monkeypatch.syspath_prepend(str(folder))
    return name, marker


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


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
        f"no code by itself: if you trust it, pass --gym_packages {module}\n")
    assert not marker.exists() and not (tmp_path / "run").exists()
    # Named on the command line, it is imported.
    assert build_config({"gym_packages": module}, recorded={k: v for k, v in crafted_params(
        tmp_path, module, key).items() if k not in ("env_id", "T", "mpi_size", "log_path")}).gym_packages == module
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
        f"itself: if you trust it, pass --gym_packages {module}\n")
    assert not marker.exists()
    # Named by --gym_packages, the module is imported and the record read.
    from her.run_folder import resume_config

    assert resume_config(log, gym_packages=module).env_id == "FetchReach-v4"
    assert marker.exists()
