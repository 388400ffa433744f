"""Stage files (stitch.stagefiles) and atomic writes (stitch.atomic): the on-disk format the stages always wrote,
checks at the boundary, nothing half-written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stitch.atomic import atomic_path, save_npy, save_npz, write_json
from stitch.errors import StitchError
from stitch.stagefiles import MASK_KINDS, Crops, FaceCrops, Latents, Masks, Quads, Tracks

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
