"""Glue for the thin rule scripts: logging into the rule's log file (progress lines from stitch.progress, warnings
and unexpected tracebacks included), threads, device, and one-line endings for user errors and for a full /
read-only disk or exhausted memory (no traceback)."""

from __future__ import annotations

import atexit
import errno
import logging
import os
import shutil
import sys
from pathlib import Path

from stitch.errors import StitchError
from stitch.memory import fixed_mmap_threshold


#: errno of a failed write -> (what happened, what to do)
_ELSEWHERE = "set results: in config/config.yaml to a folder on another disk"
DISK_ERRORS = {
    errno.ENOSPC: ("no space left on device", f"free space or {_ELSEWHERE}"),
    errno.EDQUOT: ("disk quota exceeded", f"free space or {_ELSEWHERE}"),
    errno.EROFS: ("read-only file system", "set results: in config/config.yaml to a writable folder"),
    errno.EACCES: ("permission denied", "make the folder writable or set results: in config/config.yaml to another"),
}
FULL_BYTES = 1 << 20  # a file system with less free space than this counts as full
_JOB: dict = {"rule": "?", "outputs": [], "mem_mb": None}  # the running job (setup)


def _chain(exc: BaseException):
    """The exception and its causes / contexts."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _errno_of(exc: BaseException) -> int | None:
    """errno of an OSError, or of an error that only quotes the OS message (safetensors' Rust I/O errors)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    text = str(exc)
    return next((code for code in DISK_ERRORS if os.strerror(code) in text), None)


def _output_name(filename) -> str:
    """An output's name for a path that may be its hidden temporary (stitch.atomic: .<stem>.partial<suffix>)."""
    p = Path(filename)
    if p.name.startswith(".") and ".partial" in p.name:
        p = p.with_name(p.name[1:].replace(".partial", "", 1))
    return str(p)


def _free_bytes(path) -> int | None:
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def _full(path) -> bool:
    free = _free_bytes(path)
    return free is not None and free < FULL_BYTES


def resource_error_line(exc: BaseException) -> str | None:
    """One line for a job that failed because of the machine, not the code: out of memory, or a write refused by a
    full, read-only or forbidden disk (naming the output); None for anything else."""
    rule, outputs = _JOB["rule"], [str(o) for o in _JOB["outputs"]]
    for e in _chain(exc):
        oom = getattr(getattr(sys.modules.get("torch"), "cuda", None), "OutOfMemoryError", ())  # if torch is in use
        if isinstance(e, (MemoryError, oom)) or "can't allocate memory" in str(e):
            return (f"rule {rule}: out of memory (resources: mem_mb={_JOB['mem_mb']}); run fewer jobs at once "
                    "(--cores / --resources mem_mb=...), use a shorter clip, or a machine with more memory")
        code = _errno_of(e)
        if code in DISK_ERRORS:
            what, fix = DISK_ERRORS[code]
            name = getattr(e, "filename", None)
            full = [o for o in outputs if _full(o)]
            path = _output_name(name) if name else (full or outputs or ["the rule's outputs"])[0]
            return f"rule {rule}: {what} while writing {path}; {fix}"
    full = [o for o in outputs if _full(o)]
    if full:  # errors that name no errno (torch.save's "file write failed") on a full disk
        what, fix = DISK_ERRORS[errno.ENOSPC]
        first = (str(exc).splitlines() or [""])[0]
        return f"rule {rule}: {what} while writing {full[0]} ({type(exc).__name__}: {first}); {fix}"
    return None


def _end_with(line: str) -> None:
    if logging.getLogger().handlers:  # not yet when the log file itself could not be opened
        logging.getLogger("stitch").error("%s", line)
    print(f"stitch error: {line}", file=sys.stderr)
    sys.exit(1)


def _one_line_user_errors(kind, value, tb) -> None:
    """User errors (bad input, missing model file) and resource errors (full disk, no memory) end the rule with one
    clear line instead of a traceback; any other exception's traceback goes to the rule's log file as well as the
    terminal."""
    if issubclass(kind, StitchError):
        _end_with(str(value))
    line = resource_error_line(value) if isinstance(value, Exception) else None
    if line is not None:
        _end_with(line)
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("stitch").critical("unexpected error, traceback follows", exc_info=(kind, value, tb))
    sys.exit(1)


def peak_rss_mb() -> float:
    """The peak resident memory of this process and its waited-for children (getrusage), in MB (2^20 bytes)."""
    import resource

    kb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return kb / 1024.0


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its waited-for children (getrusage)."""
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _log_job_usage(handler: logging.Handler) -> None:
    """The job's CPU time, then its peak RSS as the last line, in its log file only (stderr's last line stays a
    failure's one line). Snakemake's benchmark ``cpu_time`` is sampled every 30 s after the first 15 s, so it misses
    up to 30 s of a job's end; these are exact."""
    for msg, value in (("CPU time %.1f s", cpu_seconds()), ("peak RSS %.1f MB", peak_rss_mb())):
        handler.handle(logging.LogRecord("stitch", logging.INFO, __file__, 0, msg, (value,), None))


#: glibc's mmap threshold in the rules that decode the video's frames: a frame (6 MB at 1080p) is mapped and
#: unmapped, never left in the heap to fragment it (issue #12, ``benchmarks/bench_malloc.py``)
VIDEO_MMAP_THRESHOLD = 1 << 20
#: ... and in the torch rules on crops and latents: at 1 MB the tensors of a tuning step or a render (1-16 MB with
#: the demo pack) were mapped and unmapped at every use (page faults: PTI 1.6x, its PSNR renders 1.8x slower); glibc's
#: own threshold, which rises as blocks are freed, let PTI's peak RSS grow 9 % with 4x the frames; fixed at 16 MB
#: both are gone (``python benchmarks/bench_malloc.py --torch``)
TORCH_MMAP_THRESHOLD = 16 << 20


def _configure(snakemake, mmap_threshold: int = VIDEO_MMAP_THRESHOLD) -> None:
    sys.excepthook = _one_line_user_errors  # first: opening the log file may fail (full or read-only disk)
    fixed_mmap_threshold(mmap_threshold)
    logging.raiseExceptions = False  # a log file on a full disk must not print logging's own traceback
    _JOB.update(rule=snakemake.rule, outputs=list(snakemake.output), mem_mb=snakemake.resources.get("mem_mb"))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if len(snakemake.log):
        handlers.append(logging.FileHandler(str(snakemake.log[0]), mode="w"))
        atexit.register(_log_job_usage, handlers[-1])  # before logging's own exit handler (registered earlier)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    logging.captureWarnings(True)  # Python warnings into the log too


def setup(snakemake) -> None:
    """Log to the rule's ``log:`` file (and stderr), keep large buffers out of the heap
    (:func:`fixed_mmap_threshold`); the job's exact CPU time and peak RSS end its log (``CPU time <s> s``, then
    ``peak RSS <MB> MB``: Snakemake's benchmark samples both). Does not import torch (a rule that needs a
    device calls :func:`setup_torch`); a library that imports it later gets the rule's threads from
    ``OMP_NUM_THREADS``, which Snakemake sets for every job."""
    _configure(snakemake)
    logging.getLogger("stitch").info("rule %s with %d threads", snakemake.rule, snakemake.threads)


def setup_torch(snakemake, video_frames: bool = False):
    """:func:`setup` for a rule that runs torch models: the rule's threads, CUDA when present; returns the device.
    glibc's mmap threshold is fixed at ``TORCH_MMAP_THRESHOLD``, or at ``VIDEO_MMAP_THRESHOLD`` for a rule that
    decodes the video's frames (``video_frames``)."""
    _configure(snakemake, VIDEO_MMAP_THRESHOLD if video_frames else TORCH_MMAP_THRESHOLD)
    import torch

    torch.set_num_threads(max(1, int(snakemake.threads)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    logging.getLogger("stitch").info("rule %s on %s with %d threads", snakemake.rule, device, snakemake.threads)
    return device
