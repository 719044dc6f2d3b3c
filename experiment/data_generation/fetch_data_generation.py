"""Scripted demonstrations for the Fetch tasks: ``python experiment/data_generation/fetch_data_generation.py``.

The reference's script name, kept as a command; the command line is ``her/demos_cli.py`` (installed as
``her-demos``), the generator ``her/experts.py`` and the Fetch experts ``her/fetch_experts.py``.
"""

import sys

from her.demos_cli import main

if __name__ == "__main__":
    sys.exit(main())
