"""PTI's epochs under a step budget (``PTIConfig.max_steps_per_frame``, issue #13): a short video gets fewer
updates, so the ``fast`` schedule's cost per frame stays bounded where its keyframe count (which follows the variety
of poses, not the length) would give a short clip as many updates as a long one.

A step is one image through the tuned generator with its backward (``stitch.work``): every image of an update, and
the edit regulariser's edited image on every ``edit_reg_every``-th update. The plan is made twice: at the start,
counting every ``refine_frames`` frame as added half-way (the most steps the run could take), and again when the
frames are added, with those really added, so a video that adds fewer keeps more epochs.
"""

from __future__ import annotations

from stitch.configs import PTIConfig


def _steps(cfg: PTIConfig, frames: int, epochs: int, updates_done: int, regularise: bool) -> tuple[int, int]:
    """(most steps, updates) of ``epochs`` epochs over ``frames`` frames after ``updates_done`` updates."""
    updates = -(-frames // cfg.batch) * epochs
    steps = frames * epochs
    if regularise and updates:  # updates whose index is a multiple of edit_reg_every, a full batch each at most
        k = cfg.edit_reg_every
        steps += cfg.batch * ((updates_done + updates - 1) // k - (updates_done - 1) // k)
    return steps, updates


def planned_epochs(cfg: PTIConfig, n: int, keys: int, regularise: bool, refined: bool = False, epoch: int = 0,
                   steps: int = 0, updates: int = 0) -> int:
    """``cfg.epochs``, or fewer (at least ``epoch`` + 1) so that PTI's steps stay within ``max_steps_per_frame`` x
    ``n`` frames. Before the refine (``refined`` False) its ``refine_frames`` are counted from epoch e // 2 of a run
    of e epochs; after it (``epoch``, ``steps`` and ``updates`` done) ``keys`` holds the frames really added."""
    if cfg.max_steps_per_frame <= 0:
        return cfg.epochs
    later = keys
    if not refined and cfg.refine_frames > 0 and keys < n:
        later = keys + min(cfg.refine_frames, n - keys)

    def most_steps(e: int) -> int:
        switch = max(epoch, e // 2) if not refined else epoch
        s1, u1 = _steps(cfg, keys, switch - epoch, updates, regularise)
        s2, _ = _steps(cfg, later, e - switch, updates + u1, regularise)
        return steps + s1 + s2

    e = cfg.epochs
    while e > epoch + 1 and most_steps(e) > cfg.max_steps_per_frame * n:
        e -= 1
    return e
