"""``python -m her.run`` that stops still at one chosen write, so a test can SIGKILL it at exactly that moment.

Environment:
  PAUSE_AT    what to pause in: a path ending (``epoch_000001.partial/state_rank0.npz``, written by
              ``atomic.write_with``: the file is fully written under its temporary name, not yet renamed),
              ``commit:<epoch>`` (every file written, the rename not done), or ``publish:<name>`` (the
              top-level file about to be replaced by the checkpoint's)
  PAUSE_RANK  the MPI rank that pauses (default 0)
  PAUSE_FILE  written (with the pid) when the pause begins
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
    Path(os.environ["PAUSE_FILE"]).write_text(str(os.getpid()))
    time.sleep(600)


def main() -> int:
    rank = mpi.world().rank
    write_with, commit, link_or_copy = atomic.write_with, checkpoints.commit, checkpoints.link_or_copy

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

    def paused_link(source, dest):
        top_level = not Path(dest).parent.name.startswith((".epoch_", "epoch_"))
        if TARGET == f"publish:{Path(dest).name}" and rank == RANK and top_level:
            pause()
        return link_or_copy(source, dest)

    atomic.write_with, checkpoints.commit, checkpoints.link_or_copy = paused_write_with, paused_commit, paused_link
    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
