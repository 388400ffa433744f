"""Frame shards (issue #12): seeking decode, encoded segments joined without re-encoding, and the workflow's paste
and encode as one job per shard, resumable per shard, with the same output as one shard."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import numpy as np
import pytest

from stitch.segments import concat, segment_writer, write_segment
from stitch.shards import num_shards, shard_range
from stitch.video import audio_duration, iter_frames, probe, read_frames, write_video


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    err = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    return 10 * np.log10(255.0**2 / np.maximum(err.reshape(len(a), -1).mean(1), 1e-12))


def test_shard_ranges_cover_every_frame_once():
    assert num_shards(0, 10) == 1 and num_shards(10, 10) == 1 and num_shards(11, 10) == 2
    ranges = [shard_range(k, 33, 10) for k in range(num_shards(33, 10))]
    assert ranges == [(0, 10), (10, 20), (20, 30), (30, 33)]
    with pytest.raises(ValueError):
        shard_range(4, 33, 10)


def test_x264_gets_the_jobs_threads(tmp_path, monkeypatch):
    """The encoder's threads are the job's (OMP_NUM_THREADS, set by Snakemake from the rule's threads), not x264's
    1.5 per machine core; x264 chooses (0) outside a job; two 1-thread encodes of the same frames are identical."""
    from stitch.video import VideoWriter, encoder_threads

    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(6)]
    for env, want in (("1", 1), ("3", 3), ("", 0), ("x", 0)):
        monkeypatch.setenv("OMP_NUM_THREADS", env)
        assert encoder_threads() == want, env
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    digests = []
    for k in range(2):
        with VideoWriter(tmp_path / f"{k}.mp4", 24, total=len(frames)) as w:
            for f in frames:
                w.write(f)
            assert w._vs.codec_context.thread_count == 1
        digests.append((tmp_path / f"{k}.mp4").read_bytes())
    assert digests[0] == digests[1]


def test_figure_boxes_of_faceless_frames_come_from_the_nearest_face():
    """figures' face boxes fill frames without a face from the nearest one by binary search (the (T, T) distance
    table it built was 184 MB at 4,800 frames: the figures job grew 2.6x), same boxes as the table."""
    from stitch.figures import face_boxes

    rng = np.random.default_rng(3)
    for n in (1, 5, 300):
        valid = rng.random((1, n)) < 0.3
        valid[0, rng.integers(n)] = True
        quads = rng.uniform(100, 900, size=(1, n, 4, 2))
        ok = np.flatnonzero(valid[0])
        nearest = ok[np.abs(np.arange(n)[:, None] - ok[None]).argmin(axis=1)]
        filled = quads.copy()
        filled[0] = quads[0, nearest]
        np.testing.assert_array_equal(face_boxes(quads, valid, (1080, 1920)),
                                      face_boxes(filled, np.ones_like(valid), (1080, 1920)))


@pytest.mark.parametrize("video", ["talk_1", "act_d18"])
def test_seeking_decode_equals_decoding_from_the_start(shared_data, video):
    """A shard's frames after a seek (talk_1: variable frame rate) are the frames sequential decoding gives."""
    path = shared_data / "videos" / f"{video}.mp4"
    info = probe(path)
    times = {"pts": list(info.pts), "time_base": info.time_base}
    every = np.stack(list(iter_frames(path)))
    for start in (1, 37, 100, info.num_frames - 1):
        np.testing.assert_array_equal(read_frames(path, start, 4, times), every[start : start + 4])
    bogus = {"pts": [p + 7 for p in info.pts], "time_base": info.time_base}  # times that match no frame: decode
    np.testing.assert_array_equal(read_frames(path, 50, 2, bogus), every[50:52])  # from the start instead


@pytest.fixture(scope="module")
def source(shared_data, tmp_path_factory):
    """The first 60 frames of talk_1 (variable frame rate around 1350/61 fps, with audio): frames, frames/info.json
    (cut to them) and WAV."""
    from stitch.frames import run as frames_run

    d = tmp_path_factory.mktemp("shards")
    path = shared_data / "videos" / "talk_1.mp4"
    info = frames_run(path, d / "info.json", d / "audio.wav")
    info.update(num_frames=60, pts=info["pts"][:60])
    return d, read_frames(path, 0, 60), info


@pytest.mark.parametrize("shard_frames", [20, 59], ids=["3 shards", "last shard 1 frame"])
def test_segments_join_into_the_unsharded_video(source, shard_frames):
    """Segments joined: the frame count, every frame's time and the audio are the one-piece encode's; the frames
    are as faithful to the source as it is (only encoder state differs at the cuts)."""
    d, frames, info = source
    from stitch.encode import writer_args

    whole = d / "whole.mp4"
    if not whole.exists():
        write_video(whole, frames, audio_path=d / "audio.wav", **writer_args(info))
    segments = []
    for k in range(num_shards(len(frames), shard_frames)):
        a, b = shard_range(k, len(frames), shard_frames)
        segments.append(d / f"{shard_frames}_{k}.mp4")
        write_segment(segments[-1], frames[a:b], info, a, b - a)
    joined = d / f"joined_{shard_frames}.mp4"
    assert concat(segments, joined, info, d / "audio.wav") == len(frames)
    pj, pw = probe(joined), probe(whole)
    assert pj.num_frames == pw.num_frames == len(frames) and pj.fps == pw.fps and pj.pts == pw.pts
    assert audio_duration(joined) == audio_duration(whole)
    got, ref = read_frames(joined), read_frames(whole)
    assert psnr(got, ref).min() > 40
    assert abs(psnr(got, frames).mean() - psnr(ref, frames).mean()) < 0.5


def test_join_refuses_segments_that_do_not_add_up(source):
    from stitch.errors import StitchError

    d, frames, info = source
    a = d / "short.mp4"
    write_segment(a, frames[:10], info, 0, 10)
    with pytest.raises(StitchError, match="the segments have 10 frames, the video 60"):
        concat([a], d / "out.mp4", info)
    assert not (d / "out.mp4").exists()


def test_a_failed_segment_leaves_no_file(source, tmp_path):
    d, frames, info = source
    out = tmp_path / "0000.mp4"
    with pytest.raises(RuntimeError):
        with segment_writer(out, info, 0, 5) as w:
            w.write(frames[0])
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


# --- the workflow -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, shared_data):
    """The tiny workflow on the 33-frame clip in shards of 10 frames, stage files kept."""
    from wf import make_workdir, run_snakemake

    cache = tmp_path_factory.mktemp("shards_cache")
    wd = make_workdir(tmp_path_factory.mktemp("sharded"), cache, shared_data, extra_config={"shard_frames": 10})
    run_snakemake(wd, "--notemp", "results/clip/encode/stit/older.mp4", "results/clip/settings.yaml")
    return wd


@pytest.mark.slow
def test_paste_runs_one_job_per_shard_and_matches_one_shard(sharded, tmp_path):
    from wf import run_snakemake

    res = sharded / "results" / "clip"
    assert sorted(p.name for p in (res / "paste" / "stit" / "older").iterdir()) == [
        f"000{k}{s}" for k in range(4) for s in (".mp4", ".side_by_side.mp4")]
    assert len(list((res / "benchmarks").glob("paste_stit_older_000?.tsv"))) == 4
    one = tmp_path / "one"
    shutil.copytree(sharded, one, symlinks=True)
    (one / "config" / "config.yaml").write_text((one / "config" / "config.yaml").read_text().replace(
        "shard_frames: 10", "shard_frames: 1000"))
    run_snakemake(one, "results/clip/encode/stit/older.mp4")
    for name in ("older.mp4", "side_by_side_older.mp4", "_recon.mp4"):
        a, b = res / "encode" / "stit" / name, one / "results" / "clip" / "encode" / "stit" / name
        pa, pb = probe(a), probe(b)
        assert pa.num_frames == pb.num_frames == 33 and pa.fps == pb.fps == Fraction(1350, 61), name
        assert audio_duration(a) == audio_duration(b)
        assert psnr(read_frames(a), read_frames(b)).min() > 40, name
    settings = (res / "settings.yaml").read_text()
    assert "shard_frames:\n  value: 10\n  source: config" in settings


@pytest.mark.slow
def test_a_lost_shard_reruns_alone(sharded, tmp_path):
    """A run killed in shard 2's paste (its outputs never renamed into place, stitch.atomic), before encode: the
    rerun plans shard 2's paste and the encode, not the finished shards."""
    from test_workflow import planned_jobs

    wd = tmp_path / "wd"
    shutil.copytree(sharded, wd, symlinks=True)
    res = wd / "results" / "clip"
    for path in (res / "paste" / "stit" / "older").glob("0002.*"):
        path.unlink()
    for path in (res / "encode" / "stit").glob("*older.mp4"):
        path.unlink()
    jobs = planned_jobs(wd, "results/clip/encode/stit/older.mp4")
    assert sorted((r, wc.get("shard")) for r, wc in jobs) == [("encode", None), ("paste", "0002")], jobs


@pytest.mark.slow
def test_metrics_join_describe_shards_equal_to_one_pass(sharded):
    """The evaluation describes a video one shard per job (rules describe_source / describe); joined by metrics,
    the shards equal describing the whole encoded video in one pass (same decoded frames: segments start on
    keyframes), and the per-frame CSV carries them."""
    import pandas as pd

    from stitch.describe import join, run
    from wf import REPO, run_snakemake

    run_snakemake(sharded, "results/clip/metrics/stit/older.csv")
    res = sharded / "results" / "clip"
    for part in ("source", "stit/older"):
        assert sorted(p.name for p in (res / "describe" / part).iterdir()) == [f"000{k}.npz" for k in range(4)]
    assert len(list((res / "benchmarks").glob("describe_stit_older_000?.tsv"))) == 4
    shards = sorted((res / "describe" / "stit" / "older").glob("*.npz"))
    joined = join(shards, "test")
    whole = sharded / "whole.npz"
    files = lambda stage: sorted((res / stage).glob("*.npz"))
    run(sharded / "inputs" / "clip.mp4", res / "encode" / "stit" / "older.mp4", res / "frames" / "info.json", 0,
        None, files("crop"), files("recon"), files("masks"), res / "align" / "quads.npz", sharded / "pack",
        REPO / "resources" / "probes" / "attributes.safetensors", whole)
    one = dict(np.load(whole))
    assert sorted(one) == sorted(joined) and len(one["found"]) == 33
    for k, v in one.items():
        np.testing.assert_array_equal(joined[k], v, err_msg=k)
    df = pd.read_csv(res / "metrics" / "stit" / "older.csv")
    np.testing.assert_allclose(df["seam_mse"], one["seam_mse"], rtol=1e-5)
    np.testing.assert_allclose(df["recon_psnr"], one["quality_psnr"], rtol=1e-5)
    assert (df["found_edit"] == one["found"]).all()


def test_frames_info_counts_decoded_frames_for_the_shards(sharded):
    info = json.loads((sharded / "results" / "clip" / "frames" / "info.json").read_text())
    assert num_shards(info["num_frames"], 10) == 4 == len(list(
        (sharded / "results" / "clip" / "paste" / "stit" / "_recon").glob("*.mp4")))


REAL_VIDEOS = ["talk_1", "talk_2", "act_d3", "act_d12", "act_d18"]
REAL_SHARD = 100  # frames per shard: 125-354 frames a video, so 2-4 shards each


@pytest.fixture(scope="module")
def real_sharded(tmp_path_factory, shared_data):
    """The workflow on every real video of ../shared/data/videos at full length, in shards of 100 frames (2-4 per
    video): tiny random pack, 1 PTI epoch, 1 stitching step (the shards, not the quality, are under test)."""
    import yaml

    from wf import REPO, make_workdir, run_snakemake

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    extra = {"shard_frames": REAL_SHARD, "pti": {**cfg["pti"], "epochs": 1},
             "stitching": {**cfg["stitching"], "max_steps": 1}}
    wd = make_workdir(tmp_path_factory.mktemp("real_sharded"), tmp_path_factory.mktemp("real_cache"), shared_data,
                      extra_config=extra)
    (wd / "config" / "samples.tsv").write_text("sample\tpath\n" + "".join(
        f"{v}\t{shared_data / 'videos' / f'{v}.mp4'}\n" for v in REAL_VIDEOS))
    run_snakemake(wd, *(f"results/{v}/encode/stit/older.mp4" for v in REAL_VIDEOS), timeout=3600)
    return wd


@pytest.mark.slow
@pytest.mark.parametrize("video", REAL_VIDEOS)
def test_real_videos_keep_frames_fps_and_audio_in_shards(real_sharded, shared_data, video):
    """Issue #12's output bar on every real video, sharded: one output frame per decoded frame, every frame at the
    source's time (so the exact fps; talk_1 has a variable frame rate), the audio within 0.03 s (one AAC frame), for
    the edited and the side-by-side video."""
    src = shared_data / "videos" / f"{video}.mp4"
    res = real_sharded / "results" / video
    info = json.loads((res / "frames" / "info.json").read_text())
    shards = num_shards(info["num_frames"], REAL_SHARD)
    assert len(list(res.glob("stitching/older/*.npz"))) == shards >= 2, "the video ran in shards"
    for name in ("older.mp4", "side_by_side_older.mp4"):
        out = res / "encode" / "stit" / name
        pi = probe(out)
        assert pi.num_frames == info["num_frames"] == sum(1 for _ in iter_frames(src)), name
        assert frame_seconds(out) == frame_seconds(src), name  # every frame at its source time, exactly
        if not info["vfr"]:  # (a variable frame rate's mean fps depends on the last frame's duration)
            assert pi.fps == probe(src).fps == Fraction(info["fps_num"], info["fps_den"]), name
        assert abs(audio_duration(out) - audio_duration(src)) < 0.03, name


def frame_seconds(path) -> list[Fraction]:
    """Every frame's presentation time (exact), from the first frame's, in decode order of the packets."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        pts, tb = sorted(p.pts for p in c.demux(vs) if p.size), Fraction(vs.time_base)  # (read while open)
    return [(t - pts[0]) * tb for t in pts]
