"""Learning curves of training runs: ``python experiment/plot.py runs/*`` (the same as ``her-plot``, her/plot.py)."""

import sys

from her.plot import main

if __name__ == "__main__":
    sys.exit(main(prog="python experiment/plot.py"))
