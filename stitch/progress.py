"""Progress that shows in the rule's log as well as on the terminal.

``tqdm`` here is tqdm's bar (terminal, stderr) that also writes one line ``<desc>: n/total (pct) rate, elapsed, ETA``
through :mod:`logging` at most every ``STITCH_LOG_INTERVAL`` seconds (default 10) and when it closes, so
``tail -f`` of a long job's log file shows it is alive and how long it has left.
"""

from __future__ import annotations

import logging
import os
import time

from tqdm import tqdm as _tqdm

log = logging.getLogger("stitch.progress")


def _hms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def progress_line(desc: str, n: float, total: float | None, elapsed: float, postfix: str = "") -> str:
    """One log line: ``pti: 120/2880 (4.2%) 5.90 it/s, elapsed 0:00:20, ETA 0:07:48 [epoch=1]``."""
    rate = n / elapsed if elapsed > 0 else None
    head = f"{desc or 'progress'}: {n:g}"
    if total:
        eta = (total - n) / rate if rate else None
        head += f"/{total:g} ({100.0 * n / total:.1f}%)"
    else:
        eta = None
    rate_txt = f"{rate:.2f} it/s" if rate else "? it/s"
    tail = f", ETA {_hms(eta)}" if total else ""
    return f"{head} {rate_txt}, elapsed {_hms(elapsed)}{tail}" + (f" [{postfix}]" if postfix else "")


class tqdm(_tqdm):  # noqa: N801  (a drop-in for tqdm.tqdm)
    """tqdm that also logs a progress line every ``STITCH_LOG_INTERVAL`` s (and at the end)."""

    def __init__(self, *args, **kwargs):
        self._log_every = float(os.environ.get("STITCH_LOG_INTERVAL", "10"))
        self._log_next = time.monotonic() + self._log_every
        self._log_start = time.monotonic()
        super().__init__(*args, **kwargs)
        self._log_off = bool(kwargs.get("disable"))

    def _log(self, n: float | None = None) -> None:
        elapsed = time.monotonic() - self._log_start
        postfix = getattr(self, "postfix", "") or ""
        log.info("%s", progress_line(self.desc, self.n if n is None else n, self.total, elapsed, postfix))

    def update(self, n=1):
        out = super().update(n)
        if not self._log_off and time.monotonic() >= self._log_next:
            self._log()
            self._log_next = time.monotonic() + self._log_every
        return out

    def __iter__(self):
        # tqdm's iterator writes self.n back only when it redraws: count here
        for count, item in enumerate(super().__iter__(), start=1):
            yield item
            if not self._log_off and time.monotonic() >= self._log_next:
                self._log(count)
                self._log_next = time.monotonic() + self._log_every

    def close(self):
        if not getattr(self, "_log_off", True) and not getattr(self, "_log_closed", False):
            self._log_closed = True
            self._log()
        super().close()
