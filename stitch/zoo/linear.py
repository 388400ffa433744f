"""Linear fits shared by the attribute probe (:mod:`stitch.zoo.probe`) and the edit directions
(:mod:`stitch.zoo.directions`): closed-form ridge regression and L2-regularised logistic regression."""

from __future__ import annotations

import numpy as np

from stitch.probes import sigmoid


def fit_ridge(z: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Closed-form ridge regression ``y ~ z @ coef + intercept`` (intercept not penalised)."""
    y_mean = float(y.mean())
    zc = z - z.mean(axis=0)
    coef = np.linalg.solve(zc.T @ zc + l2 * np.eye(z.shape[1]), zc.T @ (y - y_mean))
    return coef, y_mean - float(z.mean(axis=0) @ coef)


def fit_logistic(z: np.ndarray, y: np.ndarray, l2: float, iters: int, tol: float = 1e-10):
    """L2-regularised logistic regression by damped Newton steps (at most ``iters``; intercept not penalised).

    Minimises ``mean(log-loss) + l2 / (2 N) * |coef|^2``. Returns ``(coef, intercept, steps taken)``.
    """
    n, d = z.shape
    x = np.hstack([z, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    pen = np.full(d + 1, l2 / n)
    pen[-1] = 0.0

    def loss(t: np.ndarray) -> float:
        s = x @ t
        return float(np.mean(np.logaddexp(0.0, s) - y * s) + 0.5 * (pen * t * t).sum())

    cur, step = loss(theta), 0
    for step in range(1, iters + 1):
        p = sigmoid(x @ theta)
        grad = x.T @ (p - y) / n + pen * theta
        hess = (x * (p * (1 - p))[:, None]).T @ x / n + np.diag(pen) + 1e-12 * np.eye(d + 1)
        delta = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6 and loss(theta - t * delta) > cur:  # backtracking keeps every step a descent step
            t *= 0.5
        theta = theta - t * delta
        new = loss(theta)
        if cur - new < tol:
            cur = new
            break
        cur = new
    return theta[:-1], float(theta[-1]), step
