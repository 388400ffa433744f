"""Process memory settings for the rule jobs (``stitch.smk.setup`` applies them first thing in every rule that
decodes the video's frames; the torch rules on crops and latents keep glibc's dynamic threshold: see
``stitch.smk.setup_torch``)."""

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
