"""Process memory settings for the rule jobs (``stitch.smk.setup`` / ``setup_torch`` apply them first thing, with
a threshold per kind of rule: ``stitch.smk.VIDEO_MMAP_THRESHOLD``, ``TORCH_MMAP_THRESHOLD``)."""

from __future__ import annotations

#: glibc's M_MMAP_THRESHOLD (mallopt parameter -3)
_M_MMAP_THRESHOLD = -3


def fixed_mmap_threshold(nbytes: int = 1 << 20) -> bool:
    """Serve every allocation of ``nbytes`` or more by its own mmap (glibc; elsewhere a no-op returning False).
    glibc raises its threshold each time such a block is freed, after which the frames a job decodes one by one
    (6 MB at 1080p) come from the heap and fragment it, so a job's peak RSS creeps up with the video's length
    (issue #12: it must not). ``benchmarks/bench_malloc.py`` measures it."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return bool(name) and ctypes.CDLL(name).mallopt(_M_MMAP_THRESHOLD, int(nbytes)) == 1
    except (OSError, AttributeError):
        return False
