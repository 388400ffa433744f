"""Glue for the thin rule scripts: logging into the rule's log file (progress lines from stitch.progress, warnings
and unexpected tracebacks included), threads, device."""

from __future__ import annotations

import logging
import sys

import torch

from stitch.errors import StitchError


def _one_line_user_errors(kind, value, tb) -> None:
    """User errors (bad input, missing model file) end the rule with one clear line instead of a traceback; any
    other exception's traceback goes to the rule's log file as well as the terminal."""
    if issubclass(kind, StitchError):
        logging.getLogger("stitch").error("%s", value)
        print(f"stitch error: {value}", file=sys.stderr)
        sys.exit(1)
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("stitch").critical("unexpected error, traceback follows", exc_info=(kind, value, tb))
    sys.exit(1)


def setup(snakemake) -> torch.device:
    """Log to the rule's ``log:`` file (and stderr), use the rule's threads, pick CUDA when present."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if len(snakemake.log):
        handlers.append(logging.FileHandler(str(snakemake.log[0]), mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    sys.excepthook = _one_line_user_errors
    logging.captureWarnings(True)  # Python warnings into the log too
    torch.set_num_threads(max(1, int(snakemake.threads)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    logging.getLogger("stitch").info("rule %s on %s with %d threads", snakemake.rule, device, snakemake.threads)
    return device
