"""Scripted demonstrations for the Fetch tasks: ``python experiment/data_generation/fetch_data_generation.py``.

The reference's script name, kept as a command; the experts and the generator live in ``her/experts.py`` (installed
as ``her-demos``).
"""

import sys

from her.experts import main

if __name__ == "__main__":
    sys.exit(main())
