"""``python -m her.run`` that stops still at one chosen write, so a test can SIGKILL it at exactly that moment.

Environment:
  PAUSE_AT    what to pause in: a path ending (``epoch_000001.partial/state_rank0.npz``, written by
              ``atomic.write_with``: the file is fully written under its temporary name, not yet renamed),
              ``commit:<epoch>`` (every file written, the rename not done), or ``publish:<name>`` (the
              top-level file about to be replaced by a copy of the checkpoint's)
  PAUSE_RANK  the MPI rank that pauses (default 0)
  PAUSE_FILE  written (with the pid) when the pause begins; deleting it lets the run go on
  FAIL_AT     instead of pausing, raise OSError(ENOSPC) at that write (a full disk)
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path

from her import atomic, checkpoints, mpi
from her.run import cli

TARGET = os.environ.get("PAUSE_AT", "")
FAIL = os.environ.get("FAIL_AT", "")
RANK = int(os.environ.get("PAUSE_RANK", "0"))


def pause() -> None:
    """Stand still until the test kills the process or deletes PAUSE_FILE (then go on), for 10 minutes at most."""
    marker = Path(os.environ["PAUSE_FILE"])
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + 600
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> int:
    rank = mpi.world().rank
    write_with, commit, copy_file = atomic.write_with, checkpoints.commit, checkpoints.copy_file

    def paused_write_with(path, write):
        def write_then_pause(f):
            write(f)
            f.flush()
            if TARGET and str(path).endswith(TARGET) and rank == RANK:
                pause()

        if FAIL and str(path).endswith(FAIL) and rank == RANK:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_with(path, write_then_pause)

    def paused_commit(log_dir, epoch, *args):
        if TARGET == f"commit:{epoch}" and rank == RANK:
            pause()
        return commit(log_dir, epoch, *args)

    def paused_copy(source, dest):
        if TARGET == f"publish:{Path(dest).name}" and rank == RANK:
            pause()
        return copy_file(source, dest)

    atomic.write_with, checkpoints.commit, checkpoints.copy_file = paused_write_with, paused_commit, paused_copy
    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
