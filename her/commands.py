"""The installed commands (``[project.scripts]`` of pyproject.toml): her-train, her-play, her-plot, her-demos.

Each is a thin wrapper over the module a clone runs directly, so ``python -m her.run`` and
``python experiment/plot.py`` keep working unchanged; imports happen inside, so ``--help`` stays quick.
"""

from __future__ import annotations

import sys


def train() -> int:
    """her-train: ``python -m her.run``."""
    from her.run import cli

    return cli(prog_name="her-train")


def play() -> int:
    """her-play: ``python -m her.run --play ...``, with only the options playing takes."""
    from her.run import cli, play_main

    return cli(sys.argv[1:], prog_name="her-play", command=play_main)


def plot() -> int:
    """her-plot: ``python experiment/plot.py``."""
    from her.plot import main

    return main(prog="her-plot")


def demos() -> int:
    """her-demos: ``python experiment/data_generation/fetch_data_generation.py``, ``python -m her.experts``."""
    from her.demos_cli import main

    return main()
