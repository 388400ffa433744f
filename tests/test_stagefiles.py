"""Stage files (stitch.stagefiles) and atomic writes (stitch.atomic): the on-disk format the stages always wrote,
checks at the boundary, nothing half-written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stitch.atomic import atomic_path, save_npy, save_npz, write_json
from stitch.errors import StitchError
from stitch.latents import Latents
from stitch.stagefiles import MASK_KINDS, Crops, FaceCrops, Masks, Quads, Tracks

F, T, S = 2, 5, 8


def _files():
    rng = np.random.default_rng(0)
    valid = rng.random((F, T)) > 0.3
    quads = rng.normal(size=(F, T, 4, 2))
    return {
        "tracks": Tracks(rng.normal(size=(3, T, 68, 2)), rng.random((3, T)) > 0.5, rng.normal(size=(3, T, 4)),
                         rng.random((3, T)), rng.random((3, T)), T),
        "quads": Quads(quads, valid, quads + 1, np.array([0, 2], np.int64)),
        "crops": Crops(rng.integers(0, 256, (F, T, S, S, 3), np.uint8), valid, quads, np.array([0, 2], np.int64)),
        "masks": Masks({k: rng.integers(0, 256, (F, T, S, S), np.uint8) for k in MASK_KINDS}, valid, "landmarks"),
        "face_crops": FaceCrops(rng.integers(0, 256, (F, T, S, S, 3), np.uint8), valid, {"face0": [{"steps": 3}]}),
    }


def test_npz_files_keep_the_stages_format(tmp_path):
    """Same keys, order, dtypes and values as the stages' former np.savez calls; load gives the object back."""
    files = _files()
    tr, q, c, m, fc = (files[k] for k in ("tracks", "quads", "crops", "masks", "face_crops"))
    former = {
        "tracks": dict(landmarks=tr.landmarks, present=tr.present, boxes=tr.boxes, areas=tr.areas, scores=tr.scores,
                       num_frames=np.int64(T)),
        "quads": dict(quads=q.quads, valid=q.valid, raw_quads=q.raw_quads, track_ids=q.track_ids),
        "crops": dict(crops=c.crops, valid=c.valid, quads=c.quads, track_ids=c.track_ids),
        "masks": dict(**m.masks, valid=m.valid, method=np.asarray("landmarks")),
        "face_crops": dict(crops=fc.crops, valid=fc.valid, stats=np.asarray(json.dumps(fc.stats))),
    }
    for name, obj in files.items():
        ours, theirs = tmp_path / f"{name}.npz", tmp_path / f"{name}_former.npz"
        obj.save(ours)
        np.savez(theirs, **former[name])
        with np.load(ours) as a, np.load(theirs) as b:
            assert a.files == b.files, name
            for k in a.files:
                assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (name, k)
                np.testing.assert_array_equal(a[k], b[k])
        back = type(obj).load(theirs)
        for k, v in vars(obj).items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(getattr(back, k), v)
            elif isinstance(v, dict) and name == "masks":
                assert all(np.array_equal(back.masks[kind], v[kind]) for kind in MASK_KINDS)
            else:
                assert getattr(back, k) == v, (name, k)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_masks_load_only_the_kinds_asked_for(tmp_path):
    _files()["masks"].save(tmp_path / "masks.npz")
    m = Masks.load(tmp_path / "masks.npz", ("full_mask",))
    assert list(m.masks) == ["full_mask"] and m.method == "landmarks" and m.valid.shape == (F, T)


def test_latents_npy(tmp_path):
    w = np.random.default_rng(1).normal(size=(F, T, 4, 6)).astype(np.float32)
    Latents(w).save(tmp_path / "pivots.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "pivots.npy"), w)
    np.save(tmp_path / "bad.npy", w.astype(np.float64))
    with pytest.raises(StitchError) as e:
        Latents.load(tmp_path / "bad.npy")
    assert "bad.npy" in str(e.value) and "float32" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError):
        Latents(w[0]).save(tmp_path / "x.npy")
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("break_it, words", [
    (lambda d: d.pop("track_ids"), ("no array 'track_ids'",)),
    (lambda d: d.update(valid=d["valid"][:, :-1]), ("'valid'", "frame=5")),
    (lambda d: d.update(crops=d["crops"].astype(np.float32)), ("'crops'", "float32", "uint8")),
    (lambda d: d.update(crops=d["crops"][:, :, :, :-1]), ("'crops'", "size=8")),
])
def test_bad_files_are_one_line_naming_the_file(tmp_path, break_it, words):
    c = _files()["crops"]
    arrays = dict(crops=c.crops, valid=c.valid, quads=c.quads, track_ids=c.track_ids)
    break_it(arrays)
    np.savez(tmp_path / "crops.npz", **arrays)
    with pytest.raises(StitchError) as e:
        Crops.load(tmp_path / "crops.npz")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "crops.npz")) and all(w in msg for w in words), msg


def test_tracks_num_frames_must_match(tmp_path):
    tr = _files()["tracks"]
    np.savez(tmp_path / "t.npz", **{**tr.to_arrays(), "num_frames": np.int64(T + 1)})
    with pytest.raises(StitchError, match="num_frames"):
        Tracks.load(tmp_path / "t.npz")
    empty = Tracks(*(np.zeros((0, T) + s, d) for s, d in (((68, 2), float), ((), bool), ((4,), float), ((), float),
                                                             ((), float))), num_frames=T)
    empty.save(tmp_path / "empty.npz")
    assert Tracks.load(tmp_path / "empty.npz").num_frames == T


def test_atomic_writes_leave_old_file_or_nothing(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}'
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == '{\n  "a": 1\n}' and sorted(p.name for p in target.parent.iterdir()) == ["out.json"]
    save_npz(tmp_path / "no_suffix.data", x=np.arange(3))  # numpy appends no suffix through the file object
    save_npy(tmp_path / "arr.bin", np.arange(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arr.bin", "no_suffix.data", "sub"]
    np.testing.assert_array_equal(np.load(tmp_path / "no_suffix.data")["x"], np.arange(3))


def _split(obj, cuts):
    """``obj`` cut along the frame axis at ``cuts`` (as the per-shard stages write it)."""
    bounds = [0, *cuts, T]
    arrays = obj.to_arrays()
    spec = type(obj).SPEC
    parts = []
    for a, b in zip(bounds, bounds[1:]):
        part = {k: (v[:, a:b] if "frame" in spec[k].axes else v) for k, v in arrays.items()}
        parts.append(type(obj).from_arrays(part))
    return parts


@pytest.mark.parametrize("name", ["crops", "masks"])
def test_shard_files_gather_into_the_whole_video(tmp_path, name):
    """Shards written by the per-shard stages and loaded as a list are the whole video's file, array for array;
    crops and masks are stored compressed."""
    whole = _files()[name]
    paths = []
    for k, part in enumerate(_split(whole, [2, 3])):
        paths.append(tmp_path / f"{k:04d}.npz")
        part.save(paths[-1])
    back = type(whole).load(paths)
    for key, value in whole.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[key], value)
    with np.load(paths[0]) as npz:
        assert npz.zip.infolist()[0].compress_type != 0, "saved compressed"
    if name == "masks":
        assert list(Masks.load(paths, ("full_mask",)).masks) == ["full_mask"]


def test_shards_that_disagree_are_one_line(tmp_path):
    a, b = _split(_files()["crops"], [2])
    b.track_ids = np.array([0, 1], np.int64)  # another face selection than shard 0's
    a.save(tmp_path / "0000.npz")
    b.save(tmp_path / "0001.npz")
    with pytest.raises(StitchError) as e:
        Crops.load([tmp_path / "0000.npz", tmp_path / "0001.npz"])
    assert "track_ids" in str(e.value) and "differs between the shards" in str(e.value) and "\n" not in str(e.value)


def test_face_crops_shards_merge_their_stats(tmp_path):
    """Per-frame stats lists are joined in frame order and the work records summed (the tables count them)."""
    rng = np.random.default_rng(1)
    valid = np.ones((1, T), bool)
    crops = rng.integers(0, 256, (1, T, S, S, 3), np.uint8)
    stats = [{"face0": [{"steps": 1}, {"steps": 2}], "work": {"generator_steps": 3, "generator_forwards": 4,
                                                              "shared_by_edits": False}},
             {"face0": [{"steps": 5}] * 3, "work": {"generator_steps": 15, "generator_forwards": 6,
                                                    "shared_by_edits": False}}]
    for k, (a, b) in enumerate([(0, 2), (2, T)]):
        FaceCrops(crops[:, a:b], valid[:, a:b], stats[k]).save(tmp_path / f"{k:04d}.npz")
    back = FaceCrops.load([tmp_path / "0000.npz", tmp_path / "0001.npz"])
    np.testing.assert_array_equal(back.crops, crops)
    assert [s["steps"] for s in back.stats["face0"]] == [1, 2, 5, 5, 5]
    assert back.stats["work"]["generator_steps"] == 18 and back.stats["work"]["generator_forwards"] == 10


def test_latents_of_one_shard(tmp_path):
    """A per-shard job's latents: its own shard file from a list, or its frames of a whole-video file."""
    lat = np.random.default_rng(2).normal(size=(F, T, 3, 4)).astype(np.float32)
    Latents(lat).save(tmp_path / "whole.npy")
    Latents(lat[:, :3]).save(tmp_path / "0000.npy")
    Latents(lat[:, 3:]).save(tmp_path / "0001.npy")
    shards = [tmp_path / "0000.npy", tmp_path / "0001.npy"]
    np.testing.assert_array_equal(Latents.load(shards).latents, lat)
    for path in (tmp_path / "whole.npy", shards):
        np.testing.assert_array_equal(Latents.load_shard(path, 1, 3, 2).latents, lat[:, 3:])
    with pytest.raises(StitchError) as e:
        Latents.load_shard(tmp_path / "whole.npy", 1, 3, 1)  # the shard's crops have 1 frame, not 2
    assert "shard 1 has 2" in str(e.value) and "\n" not in str(e.value)


def test_latents_written_in_chunks_are_np_save_bytes(tmp_path):
    """The edit stage writes its latents face by face, shard by shard (never the whole array in memory): the file
    is byte for byte what np.save writes; a short write is refused and leaves no file."""
    from stitch.latents import frames_from_shards

    lat = np.random.default_rng(3).normal(size=(F, T, 3, 4)).astype(np.float32)
    np.save(tmp_path / "ref.npy", lat)
    Latents.save_chunks(tmp_path / "out.npy", lat.shape, (lat[f, a:b] for f in range(F) for a, b in [(0, 2), (2, T)]))
    assert (tmp_path / "out.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    with pytest.raises(ValueError):
        Latents.save_chunks(tmp_path / "short.npy", lat.shape, [lat[0]])
    assert not (tmp_path / "short.npy").exists()
    shards = [tmp_path / "0000.npy", tmp_path / "0001.npy"]
    Latents(lat[:, :2]).save(shards[0])
    Latents(lat[:, 2:]).save(shards[1])
    np.testing.assert_array_equal(frames_from_shards(shards, [4, 1], lambda p: np.load(p)[1]), lat[1, [4, 1]])
    with pytest.raises(StitchError):
        frames_from_shards(shards, [T], lambda p: np.load(p)[1])
