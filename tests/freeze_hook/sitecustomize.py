"""Test hook (tests/test_faults.py): freeze a workflow job at a chosen point so a test can SIGKILL it there.

Put this folder first on ``PYTHONPATH``; Python imports it at start-up in every process of the run (Snakemake and
its job scripts). It does nothing unless ``STITCH_TEST_FREEZE_MARK`` names a file that does not exist yet. Then the
first job process that

- logs a message matching the regex ``STITCH_TEST_FREEZE_LOG`` (after the line has reached the rule's log), or
- renames a file into place (``os.replace``, i.e. stitch.atomic finishing an output) whose destination matches the
  regex ``STITCH_TEST_FREEZE_RENAME`` (after the rename)

writes ``{"pid", "rule", "output", "point"}`` to the mark file (created exclusively: one job per run freezes) and
stops itself with SIGSTOP. The library itself is not touched and nothing sleeps: the job stands still at exactly
that point until the test kills it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys

_MARK = os.environ.get("STITCH_TEST_FREEZE_MARK")


def _freeze(point: str) -> None:
    smk = getattr(sys.modules.get("__main__"), "snakemake", None)
    if not hasattr(smk, "rule") or not hasattr(smk, "output"):  # Snakemake itself, not a job script
        return
    try:
        fd = os.open(_MARK, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return  # another job froze already
    info = {"pid": os.getpid(), "rule": smk.rule, "output": [str(o) for o in smk.output], "point": point}
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), signal.SIGSTOP)


def _install() -> None:
    log_re = re.compile(os.environ.get("STITCH_TEST_FREEZE_LOG") or r"(?!x)x")
    rename_re = re.compile(os.environ.get("STITCH_TEST_FREEZE_RENAME") or r"(?!x)x")
    call_handlers, replace = logging.Logger.callHandlers, os.replace

    def frozen_call_handlers(self, record):
        call_handlers(self, record)
        message = record.getMessage()
        if log_re.search(message):
            _freeze(f"log: {message}")

    def frozen_replace(src, dst, *args, **kwargs):
        replace(src, dst, *args, **kwargs)
        if rename_re.search(os.fspath(dst)):
            _freeze(f"rename: {os.fspath(dst)}")

    logging.Logger.callHandlers = frozen_call_handlers
    os.replace = frozen_replace


if _MARK and not os.path.exists(_MARK):
    _install()
