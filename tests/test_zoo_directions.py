"""Edit-direction fitting for the demo pack (stitch.zoo.directions) on synthetic latents with planted attributes."""

from __future__ import annotations

import numpy as np

from stitch.edit import TYPICAL_FACTOR
from stitch.zoo.directions import cosine, fit_directions, group_mean, project_out, ridge_normal

NUM_WS, W_DIM = 4, 16


def _axes():
    """Three orthonormal planted axes (age, gender, smile) in the flattened latent space."""
    q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(NUM_WS * W_DIM, 3)))
    return [q[:, i].reshape(NUM_WS, W_DIM) for i in range(3)]


def _latents(n: int = 3000, seed: int = 0):
    """Codes whose age / gender / smile live on known axes; a strong nuisance axis is correlated with age.

    The nuisance (think lighting that differs between old and young photos) has a large variance, so the
    class-mean difference leans towards it; a fitted boundary normal should not.
    """
    rng = np.random.default_rng(seed)
    a_age, a_sex, a_smile = _axes()
    nuisance = project_out(rng.normal(size=(NUM_WS, W_DIM)), [a_age, a_sex, a_smile])
    nuisance /= np.linalg.norm(nuisance)
    age = rng.uniform(1, 90, n)
    gender = rng.integers(0, 2, n)
    smile = rng.normal(0.15, 0.08, n)
    z_age = (age - 45) / 25
    codes = 0.3 * rng.normal(size=(n, NUM_WS, W_DIM))
    codes += z_age[:, None, None] * a_age + np.where(gender == 0, 1.0, -1.0)[:, None, None] * a_sex
    codes += ((smile - 0.15) / 0.08)[:, None, None] * a_smile
    codes += (3.0 * rng.normal(size=n) + 2.0 * z_age)[:, None, None] * nuisance
    return codes, age, gender, smile, (a_age, a_sex, a_smile, nuisance)


def test_ridge_normal_recovers_a_planted_linear_rule():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, NUM_WS, W_DIM)) * rng.uniform(0.2, 3.0, size=(NUM_WS, W_DIM))
    true = rng.normal(size=(NUM_WS, W_DIM))
    y = (x * true).sum(axis=(1, 2)) + 0.1 * rng.normal(size=2000)
    n = ridge_normal(x, y, l2=1e-4)
    assert n.shape == (NUM_WS, W_DIM)
    assert np.isclose(np.linalg.norm(n), 1.0)
    assert cosine(n, true) > 0.99
    assert cosine(ridge_normal(x, -y, l2=1e-4), true) < -0.99  # the sign follows the label


def test_directions_follow_the_planted_axes_not_the_nuisance():
    codes, age, gender, smile, (a_age, a_sex, a_smile, nuisance) = _latents()
    dirs, stats = fit_directions(codes, age, gender, smile, l2=1e-3)
    assert set(dirs) == {"age", "gender", "smile"}
    d = {k: v.numpy().astype(np.float64) for k, v in dirs.items()}
    for v in d.values():
        assert v.shape == (NUM_WS, W_DIM)
    assert cosine(d["age"], a_age) > 0.95  # positive = older
    assert cosine(d["gender"], a_sex) > 0.95  # positive = more male
    assert cosine(d["smile"], a_smile) > 0.95
    assert abs(cosine(d["age"], nuisance)) < 0.1
    # the class-mean difference is pulled towards the nuisance: that is why the normal is fitted
    old, young = (age >= 50), (age >= 18) & (age <= 30)
    assert abs(cosine(group_mean(codes, old) - group_mean(codes, young), nuisance)) > 0.5
    # age is orthogonal to gender, smile to both
    assert abs(cosine(d["age"], d["gender"])) < 1e-6
    assert abs(cosine(d["smile"], d["gender"])) < 1e-6 and abs(cosine(d["smile"], d["age"])) < 1e-6
    assert stats["age"]["train_corr_with_label"] > 0.9


def test_direction_length_is_the_class_mean_distance_over_half_the_typical_factor():
    codes, age, gender, smile, _ = _latents()
    dirs, _ = fit_directions(codes, age, gender, smile)
    male, adult = gender == 0, (age >= 18) & (age <= 60)
    groups = np.digitize(age, [18, 30, 45])
    cm = group_mean(codes, adult & male, groups) - group_mean(codes, adult & ~male, groups)
    expect = np.linalg.norm(cm) / (TYPICAL_FACTOR["gender"] / 2)
    assert np.isclose(np.linalg.norm(dirs["gender"].numpy()), expect, rtol=1e-5)


def test_unknown_gender_codes_are_left_out():
    """UTKFace has a file whose gender field reads 3: it must not become a stratum of its own."""
    codes, age, gender, smile, _ = _latents()
    base, _ = fit_directions(codes, age, gender, smile)
    odd = np.full((1, NUM_WS, W_DIM), 50.0)
    more, _ = fit_directions(np.concatenate([codes, odd]), np.append(age, 61.0), np.append(gender, 3),
                             np.append(smile, np.nan))
    for k in base:
        assert np.allclose(base[k].numpy(), more[k].numpy(), atol=1e-6), k
