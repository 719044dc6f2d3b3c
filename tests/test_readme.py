"""The README's commands run as written, from a folder laid out like a fresh clone, with small training budgets.

Every command of the README's shell blocks is either run here, in the README's order, or listed in NOT_RUN with
the reason; a command added to the README without a place here fails the first test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from her.logger import read_progress

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# Training commands get these (replacing any --n_epochs or --num_timesteps): one short epoch each.
BUDGET = "--n_epochs 1 --n_cycles 1 --n_batches 2 --n_test_rollouts 1"
# The same budget for the "Train from Python" block, as keywords of her.learn.
PYTHON_BUDGET = "n_epochs=1, n_cycles=1, n_batches=2, n_test_rollouts=1"
NOT_RUN = {
    "python3 -m venv .venv": "the install is what .ci/run does before the tests",
    ".venv/bin/pip install -e '.[dev]'": "the install is what .ci/run does before the tests",
    ".venv/bin/python -m pytest tests": "the test suite itself",
    "tensorboard --logdir runs": "TensorBoard is not a dependency (the README says to install it first); the "
    "event files are tested in tests/test_train.py",
}
# Commands given inline in the README's text, run after its blocks.
INLINE = [
    "python -m her.run --resume runs/push --n_epochs 2",
    "python experiment/results.py run push --out runs/repeat",
]


def shell_commands(text: str = README) -> list[str]:
    """Each command of the ```bash blocks (split at &&), without comments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"(^|\s+)#.*$", "", line).strip()
            commands += [part.strip() for part in line.split(" && ") if part.strip()]
    return commands


def python_blocks(text: str = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def budgeted(command: str) -> str:
    if "her.run" in command and "--play" not in command and "--resume" not in command:
        command = re.sub(r"\s--(num_timesteps|n_epochs)\s+\S+", "", command) + " " + BUDGET
    return command


def test_every_readme_command_is_run_here_or_said_why_not():
    commands = shell_commands()
    assert len(commands) >= 10  # the parser found the blocks
    assert set(NOT_RUN) <= set(commands)  # no stale entries
    for text in INLINE:
        words = text.split(" --n_epochs")[0].removesuffix(" --out runs/repeat")
        assert words in README, f"the README no longer shows {words!r}"


@pytest.mark.slow  # a dozen commands, one short epoch each
def test_the_readme_commands_run_as_written(tmp_path, monkeypatch, capsys):
    # A folder like a fresh clone: the venv and the files the commands name, nothing from earlier runs.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    for name in ("examples", "experiment"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    monkeypatch.delenv("DISPLAY", raising=False)  # --play's window: none here, as on a headless machine
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    def shell(command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    def run(command: str) -> None:
        """The project's own commands in this process (one TensorFlow import for all), the rest in a shell."""
        from her.demos_cli import main as her_demos
        from her.plot import main as her_plot
        from her.run import cli

        words = shlex.split(command)
        if words[0].startswith(".venv/bin/"):  # the console script or interpreter the README names exists
            assert (tmp_path / words[0]).exists(), words[0]
        if words[:3] == [".venv/bin/python", "-m", "her.run"]:
            assert cli(words[3:]) == 0, command
        elif words[0] == ".venv/bin/her-demos":
            assert her_demos(words[1:]) == 0, command
        elif words[0] == ".venv/bin/her-plot":  # the shell's glob, expanded as the shell would
            assert her_plot([str(p) for arg in words[1:] for p in sorted(tmp_path.glob(arg))]) == 0, command
        else:
            shell(command)

    for command in shell_commands():
        if command not in NOT_RUN:
            run(budgeted(command))
    assert (tmp_path / "data_fetch_random_100.npz").is_file() and (tmp_path / "plot.png").is_file()
    assert (tmp_path / "push.mp4").stat().st_size > 0

    block = next(block for block in python_blocks() if "her.policy.load" in block)
    capsys.readouterr()
    exec(compile(block, "README.md", "exec"), {})
    assert re.search(r"success rate \d\.\d\d over 10 episodes", capsys.readouterr().out)

    run(".venv/bin/" + INLINE[0])
    assert len(read_progress(tmp_path / "runs/push/progress.csv")) == 2  # the budget's one epoch, and one more
    shell(".venv/bin/" + INLINE[1] + " --seeds 100 --epochs 1")
    assert (tmp_path / "runs/repeat/push/seed100/progress.csv").is_file()


def test_the_readme_train_from_python_block_runs(tmp_path, monkeypatch):
    (block,) = [block for block in python_blocks() if "her.learn(" in block]
    assert "n_epochs=10" in block
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block.replace("n_epochs=10", PYTHON_BUDGET), "README.md", "exec"), namespace)
    run = namespace["run"]
    assert run.log_dir == Path("runs/reach-py") and [row["epoch"] for row in run.rows] == [0]
    assert run.config.replay_k == 4 and namespace["policy"].env_id == "FetchReach-v4"
    assert (tmp_path / "runs/reach-py/policy_latest.npz").is_file()
