"""Several hosts: 2-rank jobs on two simulated machines, compared with the same job on one.

Each host is a network and UTS namespace of its own (its hostname, its interface), the two joined by a veth
pair; Open MPI reaches the second host through ``plm_ssh_agent``, here a script that runs the command in that
host's namespaces instead of over ssh. Both hosts see the same file system, as machines sharing a home folder
over NFS do. Making namespaces needs root (and a container allowed to make them): elsewhere the tests skip
saying why, and under CI, which runs as root, they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import cli_args, tiny_run

from her import mpi
from her.logger import read_progress

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = mpi.mpirun()
ADDRESSES = ("10.48.0.1", "10.48.0.2")
# --tf_threads 1: a rank's TensorFlow threads otherwise follow how many ranks share its host, which differs
# between one host and two, and threads can change the order of a float sum.
RUN = cli_args(tiny_run(n_epochs=3, n_batches=3, seed=5, buffer_save_interval=1, tf_threads=1))
# Each job starts TensorFlow on two ranks: seconds on an idle machine, but up to ten minutes on a busy one, beyond
# pytest.ini's 900 s for a test of two jobs.
pytestmark = [pytest.mark.mpi, pytest.mark.timeout(5400), pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")]

AGENT = """#!/bin/sh
# Open MPI's plm_ssh_agent: called as ssh would be, [options] host command; runs command in host's namespaces.
while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done
host=$1; shift
exec nsenter -t "$(cat {folder}/$host.pid)" -n -u sh -c "$*"
"""


def why_no_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "making network and UTS namespaces needs root, and these tests do not run as root (CI does)"
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found: the simulated hosts need util-linux and iproute2"
    return None


@dataclass
class Hosts:
    folder: Path
    holders: list[subprocess.Popen]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "OMPI_ALLOW_RUN_AS_ROOT": "1",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }

    def mpirun(self, *args: str, two_hosts: bool = True) -> list[str]:
        """An mpirun command line started on the first host; ranks 0 and 1 on the first and second host, or
        both on the first."""
        where = (
            ["--hostfile", str(self.folder / "hostfile"), "--prtemca", "plm_ssh_agent", str(self.folder / "agent.sh")]
            if two_hosts
            else ["--host", f"{ADDRESSES[0]}:2"]
        )
        return [
            "nsenter",
            "-t",
            str(self.holders[0].pid),
            "-n",
            "-u",
            str(MPIRUN),
            "-np",
            "2",
            *where,
            sys.executable,
            *args,
        ]

    def run(self, *args: str, two_hosts: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                self.mpirun(*args, two_hosts=two_hosts),
                cwd=self.folder,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        finally:
            self.end_all()  # a job killed at its timeout leaves its ranks behind

    def end_all(self) -> None:
        """Kill every process on either host but the namespaces' holders: what a failed job left behind."""
        holders = {holder.pid for holder in self.holders}
        for host in range(len(self.holders)):
            for pid in set(self.processes(host, "")) - holders:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def processes(self, host: int, text: str) -> list[int]:
        """The pids of the processes on ``host`` whose command line holds ``text``."""
        net = os.readlink(f"/proc/{self.holders[host].pid}/ns/net")
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if (
                    entry.name.isdigit()
                    and os.readlink(entry / "ns" / "net") == net
                    and text.encode() in (entry / "cmdline").read_bytes()
                ):
                    found.append(int(entry.name))
            except OSError:  # ended meanwhile
                continue
        return found


def cannot_test(reason: str) -> None:
    """Skip; but under CI (``CI`` set), which runs as root and installs iproute2, fail: CI must run these."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must be able to simulate two hosts: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Iterator[Hosts]:
    reason = why_no_namespaces()
    if reason:
        cannot_test(reason)
    folder = tmp_path_factory.mktemp("hosts")
    # Namespaces live as long as a process in them: one sleeper per host holds them.
    holders = [subprocess.Popen(["unshare", "--net", "--uts", "sleep", "3600"]) for _ in ADDRESSES]
    try:
        time.sleep(0.5)
        a, b = (str(p.pid) for p in holders)
        # The veth pair is made straight into the two namespaces: the machine's own network is never touched.
        subprocess.run(
            ["ip", "link", "add", "hv0", "netns", a, "type", "veth", "peer", "name", "hv1", "netns", b],
            check=True,
            capture_output=True,
        )
        for i, (holder, address) in enumerate(zip(holders, ADDRESSES)):
            setup = (
                f"hostname host{i} && ip addr add {address}/24 dev hv{i} && ip link set hv{i} up && ip link set lo up"
            )
            subprocess.run(
                ["nsenter", "-t", str(holder.pid), "-n", "-u", "sh", "-c", setup], check=True, capture_output=True
            )
            (folder / f"{address}.pid").write_text(str(holder.pid))
    except (subprocess.CalledProcessError, OSError) as e:
        for holder in holders:
            holder.kill()
        stderr = getattr(e, "stderr", b"") or b""
        cannot_test(f"the simulated hosts could not be made here ({e}; {stderr.decode(errors='replace').strip()})")
    (folder / "agent.sh").write_text(AGENT.format(folder=folder))
    (folder / "agent.sh").chmod(0o755)
    (folder / "hostfile").write_text("".join(f"{address} slots=1\n" for address in ADDRESSES))
    hosts = Hosts(folder, holders)
    yield hosts
    hosts.end_all()
    for holder in holders:
        holder.kill()
        holder.wait()


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def test_the_two_ranks_run_on_two_hosts(hosts):
    script = hosts.folder / "where.py"
    script.write_text(
        textwrap.dedent("""
        import socket
        from her import mpi
        comm = mpi.world()
        print(comm.rank, socket.gethostname(), comm.local_size, flush=True)
    """)
    )
    result = hosts.run(str(script), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    # Each rank alone on its host.
    assert sorted(line for line in result.stdout.splitlines() if line) == ["0 host0 1", "1 host1 1"]


@pytest.fixture(scope="module")
def straight_runs(hosts) -> dict[str, list[dict]]:
    """The progress of the same 3-epoch job on one host and on two."""
    rows = {}
    for name, two_hosts in (("one_host", False), ("two_hosts", True)):
        result = hosts.run("-m", "her.run", *RUN, "--log_path", str(hosts.folder / name), two_hosts=two_hosts)
        assert result.returncode == 0, result.stderr[-3000:]
        rows[name] = read_progress(hosts.folder / name / "progress.csv")
    return rows


def test_a_job_on_two_hosts_logs_what_the_one_host_job_logs(straight_runs):
    assert len(straight_runs["two_hosts"]) == 3
    assert untimed(straight_runs["two_hosts"]) == untimed(straight_runs["one_host"])


def test_resume_across_the_hosts_is_exact(hosts, straight_runs):
    log = hosts.folder / "resumed"
    first = hosts.run("-m", "her.run", *RUN, "--n_epochs", "2", "--log_path", str(log))
    assert first.returncode == 0, first.stderr[-3000:]
    again = hosts.run("-m", "her.run", "--resume", str(log), "--n_epochs", "3")
    assert again.returncode == 0, again.stderr[-3000:]
    assert untimed(read_progress(log / "progress.csv")) == untimed(straight_runs["two_hosts"])


def test_a_rank_killed_on_one_host_ends_the_job_at_once(hosts):
    log = hosts.folder / "killed"
    job = subprocess.Popen(
        hosts.mpirun("-m", "her.run", *RUN, "--n_epochs", "50", "--log_path", str(log)),
        cwd=hosts.folder,
        env=hosts.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 1500
        while not (log / "progress.csv").exists():  # training, past its first committed epoch
            assert job.poll() is None and time.monotonic() < deadline, "the job ended or hung before epoch 0"
            time.sleep(0.5)
        (rank1,) = hosts.processes(1, "her.run")
        os.kill(rank1, signal.SIGKILL)
        killed = time.monotonic()
        job.wait(timeout=60)
        assert time.monotonic() - killed < 30
    finally:
        if job.poll() is None:
            job.kill()
        stderr = job.communicate()[1]
        left = hosts.processes(0, "her.run") + hosts.processes(1, "her.run")
        hosts.end_all()
    assert job.returncode != 0, stderr[-3000:]
    assert left == []  # no rank left behind
