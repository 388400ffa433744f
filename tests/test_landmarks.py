"""Face tracking over time (stitch.landmarks.track_faces) and the real-video path on talk_1."""

from __future__ import annotations

import numpy as np
import pytest

from stitch.align import smooth_quads
from stitch.landmarks import Detection, FaceLandmarker, Track, box_iou, detect_video, track_faces


def det(cx, cy, size, score=1.0, tag=0.0):
    h = size / 2
    box = (int(round(cx - h)), int(round(cy - h)), int(round(cx + h)), int(round(cy + h)))
    lm = np.tile([cx, cy], (68, 1)).astype(float) + tag
    return Detection(box, score, lm)


def test_detections_in_shard_files_track_like_one_video(tmp_path):
    """The detect shards' files (flat detections per shard, frames without a face included) read back as the same
    per-frame detections, so the tracks over the joined shards are those of the unsharded video."""
    from stitch.detect import from_files, to_file

    frames = [[det(100 + t, 150, 120, tag=1), det(400 - t, 120, 60, score=2.0, tag=2)] if t % 5 else []
              for t in range(23)]
    paths = []
    for k, a in enumerate(range(0, 23, 10)):
        paths.append(tmp_path / f"{k:04d}.npz")
        to_file(frames[a : a + 10]).save(paths[-1])
    back = from_files(paths)
    assert [len(d) for d in back] == [len(d) for d in frames]
    assert all(a.box == b.box and a.score == b.score and np.array_equal(a.landmarks, b.landmarks)
               for fa, fb in zip(frames, back) for a, b in zip(fa, fb))
    ours, theirs = track_faces(back, max_gap=4), track_faces(frames, max_gap=4)
    assert len(ours) == len(theirs) == 2
    assert all(np.array_equal(a.landmarks, b.landmarks, equal_nan=True) for a, b in zip(ours, theirs))


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_two_faces_keep_ids_false_detection_dropped():
    n = 30
    frames = []
    for t in range(n):
        big = det(100 + 3 * t, 150, 120, score=0.5, tag=1)  # larger face, lower HOG score
        small = det(400 - 4 * t, 120 + t, 60, score=2.0, tag=2)
        dets = [small, big] if t % 2 else [big, small]
        if t == 7:
            dets.append(det(600, 500, 80, score=3.0, tag=3))  # one-frame false detection
        if t in (12, 13):
            dets = [big]  # the small face is missed for two frames
        frames.append(dets)
    tracks = track_faces(frames, max_gap=4, min_track_frac=0.3)
    assert len(tracks) == 2
    assert all(isinstance(tr, Track) for tr in tracks)
    big, small = tracks
    assert (big.id, small.id) == (0, 1)
    assert big.mean_area > small.mean_area
    assert big.present.all()
    assert small.present.sum() == n - 2 and not small.present[12] and not small.present[13]
    assert big.landmarks.shape == (n, 68, 2)
    # identities never swap: the landmark tags stay with their track
    assert np.all(big.landmarks[:, 0, 0] - (100 + 3 * np.arange(n)) == 1)
    ok = small.present
    assert np.all(small.landmarks[ok, 0, 0] - (400 - 4 * np.arange(n))[ok] == 2)
    assert np.isnan(small.landmarks[12]).all() and np.isnan(small.areas[12])
    np.testing.assert_allclose(big.areas, 120 * 120)


def test_crossing_faces_of_similar_size():
    # two faces pass each other vertically offset: greedy IoU / centre matching keeps them apart
    n = 20
    frames = [[det(100 + 10 * t, 100, 50, tag=1), det(290 - 10 * t, 160, 52, tag=2)] for t in range(n)]
    tracks = track_faces(frames, max_gap=3)
    assert len(tracks) == 2
    for tr in tracks:
        assert tr.present.all()
        tags = tr.landmarks[:, 0, 1] - np.where(tr.landmarks[:, 0, 1] > 130, 160, 100)
        assert len(np.unique(tags)) == 1


def test_min_track_frac_and_duplicates():
    n = 20
    frames = [[det(200, 200, 100)] for _ in range(n)]
    for t in range(6):
        frames[t].append(det(500, 200, 100, tag=5))  # present on 30 %: kept
    for t in range(10, 15):
        frames[t].append(det(800, 200, 100, tag=7))  # 25 %: dropped
    frames[3].append(det(202, 201, 98, score=-1.0))  # duplicate box of the same face in one frame: ignored
    tracks = track_faces(frames, max_gap=2, min_track_frac=0.3)
    assert len(tracks) == 2
    assert tracks[0].present.all() and tracks[1].present.sum() == 6
    assert tracks[0].mean_area == tracks[1].mean_area and tracks[0].first == 0
    assert len(track_faces(frames, max_gap=2, min_track_frac=0.2)) == 3
    assert track_faces([[] for _ in range(5)], max_gap=2) == []


def test_face_returns_after_long_gap_same_track():
    n = 40
    frames = [[det(300, 300, 150)] if not 10 <= t < 30 else [] for t in range(n)]
    tracks = track_faces(frames, max_gap=8, min_track_frac=0.3)
    assert len(tracks) == 1
    tr = tracks[0]
    assert tr.present.sum() == 20 and not tr.present[10:30].any()
    _, valid, _ = smooth_quads(tr.landmarks + np.arange(68)[None, :, None], tr.present, max_gap=8)
    assert valid[:10].all() and valid[30:].all() and not valid[10:30].any()


def read_frames(path, count):
    try:
        from stitch.video import read_frames as rf
    except ImportError:
        rf = None
    if rf is not None:
        return rf(path, 0, count)
    import av

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(np.ascontiguousarray(f.to_ndarray(format="rgb24")))
            if len(out) == count:
                break
    return np.stack(out)


def test_real_video_talk_1(shared_data):
    frames = read_frames(shared_data / "videos" / "talk_1.mp4", 30)
    assert frames.shape == (30, 700, 700, 3)
    dets = detect_video(frames, FaceLandmarker(), progress=False)
    assert len(dets) == 30
    tracks = track_faces(dets, max_gap=8, min_track_frac=0.3)
    assert len(tracks) == 1
    tr = tracks[0]
    assert tr.id == 0 and tr.present.all() and np.isfinite(tr.landmarks).all()
    quads, valid, raw = smooth_quads(tr.landmarks, tr.present, center_sigma=1.0, xy_sigma=3.0, max_gap=8)
    assert valid.all() and np.isfinite(quads).all()
    side = np.hypot(*(quads[:, 3] - quads[:, 0]).T)
    assert 250 < side.mean() < 700 and side.std() < 0.05 * side.mean()
    # the smoothed quads jitter less than the per-frame ones and stay close to them
    jitter = lambda q: np.abs(np.diff(q, n=2, axis=0)).mean()  # noqa: E731
    assert jitter(quads) < 0.5 * jitter(raw)
    assert np.abs(quads - raw).mean() < 0.02 * side.mean()
    # the face box centre lies inside the quad's central region
    centre = quads.mean(axis=1)
    box_c = (tr.boxes[:, :2] + tr.boxes[:, 2:]) / 2
    assert np.all(np.hypot(*(centre - box_c).T) < 0.25 * side)


def test_detection_on_a_scaled_copy_of_an_hd_frame(shared_data):
    """detect_long_side: the face of a 1080p frame is found on a 640 px copy and its landmarks, fitted at full
    resolution, stay within a few px of full-resolution detection; frames no longer than 640 px are untouched."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_landmarks import to_1080p

    frame = read_frames(shared_data / "videos" / "talk_1.mp4", 1)[0]
    hd = to_1080p(frame)
    copy, scale = FaceLandmarker(0, 640).detection_copy(hd)
    assert copy.shape == (360, 640, 3) and scale == pytest.approx(1 / 3)  # the detector sees 9x fewer pixels
    full, scaled = FaceLandmarker(0, 0).detect(hd), FaceLandmarker(0, 640).detect(hd)
    assert len(full) == len(scaled) == 1
    assert np.linalg.norm(full[0].landmarks - scaled[0].landmarks, axis=1).mean() < 5.0
    assert box_iou(full[0].box, scaled[0].box) > 0.8
    small = np.ascontiguousarray(frame[:600, :600])
    a, b = FaceLandmarker(0, 0).detect(small), FaceLandmarker(0, 640).detect(small)
    assert [d.box for d in a] == [d.box for d in b] and all(np.array_equal(x.landmarks, y.landmarks) for x, y in zip(a, b))
