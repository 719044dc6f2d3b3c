"""For tools and instructions of the ``setup.py`` era (``python setup.py develop``, scanners that look for this
file): the metadata lives in pyproject.toml alone, which setuptools reads when ``setup()`` is given nothing."""

import sys

import setuptools

# pyproject.toml's license = "MIT" (PEP 639) is read by setuptools 77 and newer; older ones stop with a schema error
# of forty lines. `pip install -e .` needs no help: it builds with the setuptools pyproject.toml asks for.
if int(setuptools.__version__.split(".")[0]) < 77:
    sys.exit(
        f"error: setup.py reads pyproject.toml, which needs setuptools >= 77 (this is {setuptools.__version__}): "
        "pip install -U 'setuptools>=77', or install with pip install -e ."
    )

setuptools.setup()
