"""A throwaway one-node SLURM on localhost: munged + slurmctld + slurmd, all private to one temp dir.

Used by ``tests/test_slurm.py`` (fixture ``slurm``) and by ``.ci/slurm``; also runnable by hand::

    python tests/slurm_cluster.py run -- snakemake --profile workflow/profiles/slurm-ci

starts the cluster, runs the command with ``SLURM_CONF`` pointing at it, and always stops the cluster again.

Nothing touches the machine's own SLURM / munge setup: the munge socket, key, ports, state and spool folders,
pid and log files all live under the temp dir, and ``SLURM_CONF`` is only set in the environment of the
processes started here (``LocalSlurm.env``). The node is the local host (``hostname -s``, 127.0.0.1) with all
its CPUs (at least 2, or ``cpus``: ``config_overrides``), most of its free memory and ``gpus`` fake GPUs
(``gres.conf``: ``File=/dev/null``, ``/dev/zero``, ...: character devices that exist everywhere) so ``--gpus=1`` /
``--gres=gpu:1`` requests are accepted and scheduled, several at once; jobs then see ``CUDA_VISIBLE_DEVICES=<k>``
but no real device. ``MinJobAge=3600`` keeps finished jobs visible to
``squeue``/``scontrol`` (there is no accounting database, so ``sacct`` knows nothing).

One shim: inside a job, Snakemake's jobstep plugin runs the rule with ``srun`` after removing every ``SLURM_*``
variable (``SLURM_CONF`` too) from its environment. A real site has ``/etc/slurm/slurm.conf`` for that srun;
this cluster's config is private, so ``env`` puts ``<root>/bin/srun`` (sets ``SLURM_CONF``, then runs the real
srun) first on ``PATH``.

Packages: ``slurm-wlm`` and ``munge`` are installed with apt-get when missing (root only).
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from apt import Unavailable, apt_install

PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
MARKER = "STITCH_LOCAL_SLURM"  # set in the env of every process of the cluster (daemons and jobs)


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def ensure_installed(log=print) -> None:
    """apt-get install slurm-wlm munge when any binary is missing (needs root and apt-get)."""
    apt_install(PACKAGES, missing_binaries, log)


def _sbin(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 4096


def _has_marker(pid: int, value: str) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{MARKER}={value}".encode() in env


#: the fake GPUs' device files (gres needs character devices; these exist on every Linux)
FAKE_GPUS = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")


class LocalSlurm:
    """One-node SLURM under ``root`` (a fresh temp dir by default). ``start()`` / ``stop()``, or ``with``."""

    def __init__(self, root: str | Path | None = None, cpus: int | None = None, mem_mb: int | None = None,
                 partition: str = "ci", gpus: int = 1):
        if not 1 <= gpus <= len(FAKE_GPUS):
            raise ValueError(f"gpus must be 1..{len(FAKE_GPUS)}")
        self.gpus = gpus
        self.root = Path(root or tempfile.mkdtemp(prefix="stitch-slurm-")).resolve()
        self.host = socket.gethostname().split(".")[0]
        self.cpus = max(2, cpus or os.cpu_count() or 2)
        self.mem_mb = mem_mb or max(2048, min(16000, int(_mem_available_mb() * 0.6)))
        self.partition = partition
        self.conf = self.root / "slurm.conf"
        self.munge_dir = self.root / "munge"
        self.munge_socket = self.root / "munge-run" / "munge.socket"  # its folder must be world-executable
        self.procs: dict[str, subprocess.Popen] = {}

    # -- environment ----------------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment for sbatch/squeue/snakemake talking to this cluster (not set in ``os.environ``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env.update(SLURM_CONF=str(self.conf), PATH=f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}",
                   **{MARKER: str(self.root)})
        return env

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    # -- configuration --------------------------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # munged (user munge) must reach its folder
        ctld_port, d_port = _free_port(), _free_port()
        r = self.root
        self.conf.write_text(f"""\
# throwaway one-node cluster written by tests/slurm_cluster.py
ClusterName=stitchci
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} Gres=gpu:{self.gpus} State=UNKNOWN
PartitionName={self.partition} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        (self.root / "gres.conf").write_text("".join(f"NodeName={self.host} Name=gpu File={dev}\n"
                                                     for dev in FAKE_GPUS[: self.gpus]))
        srun = shutil.which("srun")
        (self.root / "bin").mkdir(exist_ok=True)
        shim = self.root / "bin" / "srun"
        shim.write_text(f"#!/bin/sh\n# see tests/slurm_cluster.py: the jobstep's srun gets no SLURM_CONF\n"
                        f"SLURM_CONF='{self.conf}' exec '{srun}' \"$@\"\n")
        shim.chmod(0o755)
        munge = pwd.getpwnam("munge")
        self.munge_dir.mkdir(mode=0o700, exist_ok=True)
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket.parent.mkdir(mode=0o755, exist_ok=True)
        for p in (self.munge_dir, key, self.munge_socket.parent):
            os.chown(p, munge.pw_uid, munge.pw_gid)

    # -- daemons --------------------------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], **kw) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env, start_new_session=True, **kw)
        log.close()

    def start(self, timeout: float = 60) -> "LocalSlurm":
        ensure_installed()
        if os.geteuid() != 0:
            raise Unavailable("the local SLURM runs its daemons as root")
        try:
            self.write_config()
            m = self.munge_dir
            self._spawn("munged", [_sbin("munged"), "-F", f"--socket={self.munge_socket}", f"--key-file={m}/munge.key",
                                   f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log",
                                   f"--seed-file={m}/munged.seed"], user="munge", group="munge", extra_groups=[])
            self._wait(lambda: self.munge_socket.exists(), timeout, "munged socket")
            self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-f", str(self.conf)])
            self._spawn("slurmd", [_sbin("slurmd"), "-D", "-f", str(self.conf)])
            self._wait(self._node_idle, timeout, "node idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.time() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"timeout after {timeout:.0f} s"
                raise RuntimeError(f"local SLURM: waiting for {what}: {why}\n{self.logs()}")
            time.sleep(0.3)

    def _node_idle(self) -> bool:
        proc = self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10)
        return proc.returncode == 0 and proc.stdout.strip().lower().rstrip("*") == "idle"

    def logs(self, tail: int = 30) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*")) + sorted(self.munge_dir.glob("*.log")):
            try:
                lines = f.read_text(errors="replace").splitlines()[-tail:]
            except OSError:
                continue
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def stop(self, timeout: float = 20) -> list[str]:
        """Cancel all jobs, stop slurmd, slurmctld and munged, and kill any process still carrying this
        cluster's marker (job steps). Returns descriptions of what had to be killed the hard way."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", f"--partition={self.partition}", check=False, timeout=10)
            deadline = time.time() + 10
            while time.time() < deadline:
                q = self.run("squeue", "-h", "-t", "RUNNING,COMPLETING,PENDING,CONFIGURING", "-o", "%i",
                             check=False, timeout=10)
                if q.returncode != 0 or not q.stdout.strip():
                    break
                time.sleep(0.5)
        hard = []
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
                hard.append(name)
        # anything of ours still alive (slurmstepd, job processes) carries the marker in its environment
        for _ in range(3):
            left = [int(d) for d in os.listdir("/proc") if d.isdigit() and int(d) != os.getpid()
                    and _has_marker(int(d), str(self.root))]
            if not left:
                break
            for pid in left:
                try:
                    hard.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80])
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.5)
        return hard

    def leftovers(self) -> list[int]:
        """Pids of processes still carrying this cluster's marker (should be none after ``stop``)."""
        return [int(d) for d in os.listdir("/proc") if d.isdigit() and _has_marker(int(d), str(self.root))]

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspecting jobs ------------------------------------------------------------------------------------
    def jobs(self, name: str | None = None) -> list[dict[str, str]]:
        """Every job slurmctld still knows (``scontrol show job -d``), as flat key=value dicts; ``name`` filters
        by job name (the Snakemake SLURM plugin names all jobs of one run by the run's uuid)."""
        out = self.run("scontrol", "show", "job", "-d", "--oneliner").stdout
        jobs = [parse_scontrol_record(line) for line in out.splitlines() if line.strip().startswith("JobId=")]
        return [j for j in jobs if name is None or j.get("JobName") == name]


def parse_scontrol_record(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value with spaces`` -> dict. A value runs until the next `` Key=``."""
    fields = {}
    for m in re.finditer(r"(?:^|\s)([A-Za-z_:/]+)=(.*?)(?=\s+[A-Za-z_:/]+=|\s*$)", line.strip()):
        fields.setdefault(m.group(1), m.group(2))
    return fields


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="apt-get install slurm-wlm munge when missing")
    runp = sub.add_parser("run", help="start the cluster, run a command against it, stop the cluster")
    runp.add_argument("command", nargs=argparse.REMAINDER, help="command (after --); SLURM_CONF is set for it")
    args = ap.parse_args(argv)
    if args.cmd == "install":
        ensure_installed()
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("run: give a command after --")
    cluster = LocalSlurm()
    t0 = time.time()
    try:
        cluster.start()  # stops whatever it started when it fails
    except BaseException:
        cluster.cleanup()
        raise
    print(f"local SLURM up in {time.time() - t0:.1f} s: SLURM_CONF={cluster.conf}", file=sys.stderr, flush=True)
    try:
        return subprocess.run(command, env=cluster.env).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        killed = cluster.stop()
        if killed:
            print(f"local SLURM: killed leftovers {killed}", file=sys.stderr)
        cluster.cleanup()


if __name__ == "__main__":
    sys.exit(main())
