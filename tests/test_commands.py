"""Installed commands: every console script of pyproject.toml starts and prints its help from any folder; --version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import her
from her import commands
from her.run import cli

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {"her-train", "her-play", "her-plot", "her-demos"}


def console_scripts() -> dict[str, str]:
    """``name -> module:function`` as pyproject.toml declares them."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_pyproject_declares_the_four_commands():
    assert set(console_scripts()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_command_prints_its_help_from_another_folder(name, tmp_path):
    # What the installed wrapper script does, run from a folder that is not the clone.
    module, function = console_scripts()[name].split(":")
    script = f"import sys; from {module} import {function}; sys.argv = [{name!r}, '--help']; sys.exit({function}())"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.lower().startswith(f"usage: {name}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_installed_command_help(name, tmp_path):
    script = Path(sys.executable).parent / name
    if not script.exists():
        pytest.skip(f"{name} is not installed in this environment (pip install -e .)")
    result = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.lower().startswith(f"usage: {name}")


def test_her_play_without_a_policy_says_what_it_needs(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["her-play"])
    assert commands.play() == 2
    assert capsys.readouterr().err == "error: --play needs --load_path <policy file or log folder>\n"


def test_version(capsys):
    assert cli(["--version"]) == 0
    assert capsys.readouterr().out == f"her-tf2 {her.version()}\n"
    assert her.version().count(".") >= 2


def test_her_play_help_lists_only_what_playing_takes(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["her-play", "--help"])
    assert commands.play() == 0
    out = capsys.readouterr().out
    assert "--load_path" in out and "--save_demos" in out and "--batch_size" not in out


def test_her_play_refuses_a_training_option_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["her-play", "--batch_size", "3"])
    assert commands.play() == 2
    assert capsys.readouterr().err == "error: her-play has no option --batch_size; see her-play --help\n"


def test_setup_py_defers_to_pyproject_toml():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    done = subprocess.run(
        [sys.executable, "setup.py", "--name", "--version"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [project["name"], project["version"]]
