"""Bad and unusual video files (issue #14, video half of the bad-input corpus).

Every input is generated here (nothing committed) from 14 frames of ``../shared/data/videos/talk_1.mp4`` framed
small, with PyAV (pts, display matrix, audio layouts), into ONE work dir whose path has a space and a non-ASCII
letter (tests/wf.py, tiny random pack). A file the workflow cannot use ends with exactly one ``stitch error:`` line
naming it and the fix, no traceback, and nothing of that sample under results/ a rerun would take as done (only
its ``frames`` job or its ``landmarks`` job runs). An unusual file works: the input stage records its facts
(``frames/info.json``), and the final video of the telling cases (rotation both ways, variable frame rate,
grayscale, odd size, 4K, unusual audio, a path with a space and an accent) keeps the source's frame count, size,
orientation, colours, frame times and audio duration.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from test_bad_inputs import done_files, one_line
from wf import make_workdir, run_snakemake

pytestmark = pytest.mark.slow

FACE_BOX_CENTRE, FACE_BOX_SIZE = (388, 244), 215  # the face in talk_1's 700 px frames (dlib box)
VFR_PTS = [0, 40, 80, 120, 370, 410, 450, 700, 740, 780, 820, 860]  # ms: 25 fps with two 0.25 s gaps
TARGET = "results/{s}/encode/stit/older.mp4"


# -- making inputs ---------------------------------------------------------------------------------------------------
def framed(frames, w: int, h: int, face: float = 100, cx: float = 0.5, cy: float = 0.5) -> list[np.ndarray]:
    """talk_1 frames scaled so the face is ``face`` px wide, placed at (cx, cy) of a ``w`` x ``h`` frame."""
    s = face / FACE_BOX_SIZE
    m = np.float32([[s, 0, w * cx - FACE_BOX_CENTRE[0] * s], [0, s, h * cy - FACE_BOX_CENTRE[1] * s]])
    return [cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE) for f in frames]


def tone(seconds: float, rate: int, channels: int) -> np.ndarray:
    """(channels, n) float32 sine tones, one pitch per channel."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def write_clip(path: Path, frames, pts=None, rotation: int | None = None, audio=None, faststart=False) -> Path:
    """H.264 mp4 of RGB frames at 25 fps (or at ``pts`` ms), optional display rotation (counter-clockwise degrees)
    and AAC audio ``(samples (C, n) float32, rate, layout)``."""
    pts = pts or [40 * i for i in range(len(frames))]
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"} if faststart else {}) as out:
        vs = out.add_stream("libx264", rate=25)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p" if vs.width % 2 == 0 and vs.height % 2 == 0 else "yuv444p"
        vs.codec_context.time_base = tb
        if rotation is not None:
            vs.set_display_rotation(rotation)
        if audio is not None:
            samples, rate, layout = audio
            st = out.add_stream("aac", rate=rate, layout=layout)
        for p, f in zip(pts, frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts, vf.time_base = p, tb
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        if audio is not None:
            for i in range(0, samples.shape[1], 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + 1024]), format="fltp",
                                                layout=layout)
                af.sample_rate, af.pts, af.time_base = rate, i, Fraction(1, rate)
                out.mux(st.encode(af))
            out.mux(st.encode(None))
    return path


def audio_only(path: Path) -> Path:
    """An AAC track in an mp4 container, no video (an .m4a named .mp4)."""
    samples = tone(0.5, 44100, 2)
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("aac", rate=44100, layout="stereo")
        for i in range(0, samples.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + 1024]), format="fltp",
                                            layout="stereo")
            af.sample_rate, af.pts, af.time_base = 44100, i, Fraction(1, 44100)
            out.mux(st.encode(af))
        out.mux(st.encode(None))
    return path


def wav_file(path: Path) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((tone(0.5, 8000, 1)[0] * 32767).astype(np.int16).tobytes())
    return path


def truncated(path: Path, frames) -> Path:
    """A faststart mp4 (index first) with audio, cut in the middle of its media data."""
    write_clip(path, frames, audio=(tone(len(frames) / 25, 44100, 2), 44100, "stereo"), faststart=True)
    data = path.read_bytes()
    mdat = data.index(b"mdat")
    path.write_bytes(data[: mdat + (len(data) - mdat) // 2])
    return path


def build_inputs(inputs: Path, talk: np.ndarray) -> dict[str, dict]:
    """{sample: {path:, and optional samples.tsv columns}} of every case, files written under ``inputs``."""
    f12 = framed(talk[:12], 256, 256, 80)
    upright = framed(talk[:12], 192, 256, 80)  # portrait, as shown
    gap = np.full_like(f12[0], 90)
    no_face_rng = np.random.default_rng(0)
    sky = np.linspace(80, 200, 144, dtype=np.float32)[:, None, None] * np.ones((144, 192, 3), np.float32)
    two = [np.concatenate([a, b[:, ::-1]], axis=1) for a, b in zip(framed(talk[:12], 160, 192, 90),
                                                                   framed(talk[:12], 160, 192, 70))]
    s = {
        "empty": inputs / "empty.mp4",
        "truncated": truncated(inputs / "truncated.mp4", f12),
        "image": inputs / "image.mp4",
        "wav": wav_file(inputs / "wav.mp4"),
        "aac": audio_only(inputs / "aac.mp4"),
        "onepx": write_clip(inputs / "onepx.mp4", [f[:5, :7] for f in framed(talk[:8], 8, 6, 8)]),
        "noface": write_clip(inputs / "noface.mp4", [(sky + no_face_rng.normal(0, 3, sky.shape)).clip(0, 255)
                                                     .astype(np.uint8) for _ in range(10)]),
        "tinyface": write_clip(inputs / "tinyface.mp4", framed(talk[:10], 192, 144, 19)),
        "oneframe": write_clip(inputs / "oneframe.mp4", f12[:1]),
        "lost": write_clip(inputs / "lost.mp4", f12[:3] + [gap] * 9 + framed(talk[12:14], 256, 256, 80)),
        "twofaces": write_clip(inputs / "twofaces.mp4", two),
        "sideways": write_clip(inputs / "sideways.mp4", [np.rot90(f, 1) for f in upright], rotation=-90,
                               audio=(tone(12 / 25, 8000, 1), 8000, "mono")),
        "turned": write_clip(inputs / "turned.mp4", framed(talk[:12], 256, 192, 80), rotation=-90,
                             audio=(tone(12 / 25, 96000, 2), 96000, "stereo")),
        "vfr": write_clip(inputs / "vfr.mp4", f12, pts=VFR_PTS, audio=(tone(0.9, 48000, 6), 48000, "5.1")),
        "gray": write_clip(inputs / "gray.mp4", [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, 2)
                                                 for f in f12]),
        "k4": write_clip(inputs / "k4.mp4", framed(talk[:2], 3840, 2160, 400)),
        "accent": write_clip(inputs / "vidéo clip.mp4", framed(talk[:10], 257, 203, 80),  # odd size too
                             audio=(tone(0.4, 44100, 2), 44100, "stereo")),
    }
    s["empty"].write_bytes(b"")
    cv2.imwrite(str(inputs / "image.png"), f12[0])
    (inputs / "image.png").rename(s["image"])
    return {name: {"path": str(p.relative_to(inputs.parent))} for name, p in s.items()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    """The work dir (its path has a space and an accent) with every case as one samples.tsv row."""
    from stitch.video import read_frames

    talk = read_frames(shared_data / "videos" / "talk_1.mp4", 20, 14)
    wd = make_workdir(tmp_path_factory.mktemp("bad videos") / "vidéo corpus", tmp_path_factory.mktemp("cache"),
                      shared_data)
    rows = build_inputs(wd / "inputs", talk)
    lines = ["sample\tpath"] + [f"{name}\t{row['path']}" for name, row in rows.items()]
    (wd / "config" / "samples.tsv").write_text("\n".join(lines) + "\n")
    return wd


# -- refused with one line -------------------------------------------------------------------------------------------
FIX = r"re-export the video or copy it again in full"
REFUSED = {  # sample: (target, expected line)
    "empty": ("frames/info.json", r"inputs/empty.mp4: is empty \(0 bytes\); copy the video again$"),
    "truncated": ("frames/info.json", rf"inputs/truncated.mp4: truncated or damaged \(the container lists 12 video "
                                      rf"frames, the file holds \d+\); {FIX}"),
    "image": ("frames/info.json", r"inputs/image.mp4: is an image \(png_pipe\), not a video; give a video file$"),
    "wav": ("frames/info.json", r"inputs/wav.mp4: has no video stream \(it is an audio file\); give a video file$"),
    "aac": ("frames/info.json", r"inputs/aac.mp4: has no video stream \(it is an audio file\); give a video file$"),
    "onepx": ("frames/info.json", r"inputs/onepx.mp4: is 7x5 px, too small to find a face in; give a video at "
                                  r"least 32 px on each side$"),
    "noface": ("landmarks/tracks.npz", r"no face track found in inputs/noface.mp4 \(a face on at least 30% of its 10 "
                                       r"frames\); if the face is small .*landmarks.upsample: 1 or 2"),
    "tinyface": ("landmarks/tracks.npz", r"no face track found in inputs/tinyface.mp4 \(a face on at least 30% of "
                                         r"its 10 frames\); if the face is small \(under ~80 px\), set "
                                         r"landmarks.upsample: 1 or 2 in config/config.yaml or the samples.tsv "
                                         r"column landmarks_upsample"),
}


@pytest.mark.parametrize("sample", list(REFUSED))
def test_refused_with_one_line(corpus, sample):
    target, expected = REFUSED[sample]
    line = one_line(run_snakemake(corpus, f"results/{sample}/{target}", check=False))
    assert re.search(expected, line), line
    left = [f for f in done_files(corpus) if f.startswith(f"{sample}/")]
    # a face problem stops rule landmarks: the (correct) frames facts and the shards' detections may stay, nothing
    # after them
    done = [f"{sample}/detect/0000.npz", f"{sample}/frames/audio.wav", f"{sample}/frames/info.json"]
    assert left == ([] if target.startswith("frames") else done)


def test_tiny_face_found_with_the_hinted_setting(corpus):
    """The hint is right: landmarks.upsample 2 finds the ~19 px face."""
    from stitch.landmarks import FaceLandmarker
    from stitch.video import read_frames

    frame = read_frames(corpus / "inputs" / "tinyface.mp4", 0, 1)[0]
    assert FaceLandmarker(0).detect(frame) == []
    boxes = [d.box for d in FaceLandmarker(2).detect(frame)]
    assert len(boxes) == 1 and abs((boxes[0][0] + boxes[0][2]) / 2 - 96) < 10, boxes


# -- unusual but fine ------------------------------------------------------------------------------------------------
WORKS = ["oneframe", "lost", "twofaces", "sideways", "turned", "vfr", "gray", "k4", "accent"]
END_TO_END = ["sideways", "turned", "vfr", "gray", "k4", "accent", "oneframe"]


@pytest.fixture(scope="module")
def worked(corpus):
    """Every unusual case through its input and face stages, the telling ones to the final video."""
    targets = [f"results/{s}/align/quads.npz" for s in WORKS] + [TARGET.format(s=s) for s in END_TO_END]
    run_snakemake(corpus, *targets)
    return corpus


def info(wd, s) -> dict:
    return json.loads((wd / "results" / s / "frames" / "info.json").read_text())


def test_input_facts(worked):
    """frames/info.json: frames that decode, size as shown, rotation, frame times, grayscale, audio."""
    got = {s: info(worked, s) for s in WORKS}
    facts = {s: (i["num_frames"], i["width"], i["height"], i["rotation"], i["vfr"], i["grayscale"], i["has_audio"])
             for s, i in got.items()}
    assert facts == {
        "oneframe": (1, 256, 256, 0, False, False, False), "lost": (14, 256, 256, 0, False, False, False),
        "twofaces": (12, 320, 192, 0, False, False, False), "sideways": (12, 192, 256, 270, False, False, True),
        "turned": (12, 192, 256, 270, False, False, True), "vfr": (12, 256, 256, 0, True, False, True),
        "gray": (12, 256, 256, 0, False, True, False), "k4": (2, 3840, 2160, 0, False, False, False),
        "accent": (10, 257, 203, 0, False, False, True),
    }
    tb = Fraction(got["vfr"]["time_base_num"], got["vfr"]["time_base_den"])
    assert [round(float(p * tb) * 1000) for p in got["vfr"]["pts"]] == VFR_PTS
    assert got["accent"]["path"] == "inputs/vidéo clip.mp4"


def test_face_lost_for_many_frames(worked):
    """The face comes back at the same place after 9 frames (more than landmarks.max_gap): one track, the frames
    without it are not edited (paste copies them from the source)."""
    q = np.load(worked / "results" / "lost" / "align" / "quads.npz")
    assert q["valid"].shape == (1, 14)
    np.testing.assert_array_equal(q["valid"][0], [True] * 3 + [False] * 9 + [True] * 2)


def test_two_faces_largest_edited(worked):
    """Two faces: both are tracked, the larger one (track 0, on the left) is edited (config faces: largest)."""
    tracks = np.load(worked / "results" / "twofaces" / "landmarks" / "tracks.npz")
    assert tracks["present"].shape[0] == 2 and tracks["present"].all()
    q = np.load(worked / "results" / "twofaces" / "align" / "quads.npz")
    assert list(q["track_ids"]) == [0] and q["valid"].all()
    assert np.nanmean(q["quads"][0, :, :, 0]) < 160  # the left, larger face


def source_as_shown(wd, s) -> np.ndarray:
    """The input's frames as a player shows them (its display matrix applied by FFmpeg's own rule)."""
    from stitch.video import read_frames

    return read_frames(wd / info(wd, s)["path"]).astype(int)


def output(wd, s):
    from stitch.video import probe, read_frames

    path = wd / TARGET.format(s=s)
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        rotation = frame.rotation
    return probe(path), read_frames(path).astype(int), rotation


@pytest.mark.parametrize("sample", END_TO_END)
def test_final_video_keeps_the_source(worked, sample):
    """Same frame count and size as shown, no rotation tag (frames are stored as shown), the same picture outside
    the face, the source's frame times and audio length (or no audio)."""
    from stitch.video import audio_duration, probe

    src_info, src = probe(worked / info(worked, sample)["path"]), source_as_shown(worked, sample)
    out_info, out, rotation = output(worked, sample)
    assert out.shape == src.shape and rotation == 0
    q = np.load(worked / "results" / sample / "align" / "quads.npz")
    outside = np.ones(src.shape[:3], np.uint8)
    for t in np.flatnonzero(q["valid"][0]):
        cv2.fillPoly(outside[t], [np.round(q["quads"][0, t]).astype(np.int32)], 0)
    outside = outside.astype(bool)
    assert outside.mean() > 0.2
    assert np.abs(out[outside] - src[outside]).mean() < 3.0  # H.264 at crf 18
    src_t = np.asarray(src_info.pts, float) * float(src_info.time_base)
    out_t = np.asarray(out_info.pts, float) * float(out_info.time_base)
    np.testing.assert_allclose(out_t, src_t, atol=1e-3)
    assert out_info.has_audio == src_info.has_audio
    if src_info.has_audio:
        src_audio = audio_duration(worked / info(worked, sample)["path"])
        assert abs(audio_duration(worked / TARGET.format(s=sample)) - src_audio) < 0.05


def test_rotation_plays_as_the_input(worked):
    """A sideways-stored phone clip tagged to play upright comes out upright; an upright clip tagged to play turned
    comes out turned (its face found in the stored orientation), both without a tag."""
    for s in ("sideways", "turned"):
        _, out, rotation = output(worked, s)
        assert out.shape[1:3] == (256, 192) and rotation == 0
    tracks = np.load(worked / "results" / "turned" / "landmarks" / "tracks.npz")
    assert tracks["present"][0].all()
    eyes = tracks["landmarks"][0, 0, 36:48].mean(0)
    mouth = tracks["landmarks"][0, 0, 48:68].mean(0)
    assert abs(eyes[0] - mouth[0]) > abs(eyes[1] - mouth[1])  # as shown, the face lies on its side


def test_grayscale_stays_gray(worked):
    _, out, _ = output(worked, "gray")
    assert np.abs(out - out.mean(-1, keepdims=True)).max() <= 3, "colour cast"
