"""Implicit-feedback ALS with the `implicit` library, on CPU or (with the `gpu` extra) CUDA."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from c360.errors import InputError

from ..base import FactorModel
from ..gpu import gpu_status
from ..registry import register

WEIGHTINGS = ("linear", "log", "binary")
GPU_CHOICES = ("auto", "on", "off")
log = logging.getLogger("c360.recsys")


def confidence(matrix: sp.csr_matrix, weighting: str, alpha: float) -> sp.csr_matrix:
    """Confidence weights c(u,i) = alpha * f(r): linear r, log 1+log(r), or binary 1 (r = photos)."""
    if weighting not in WEIGHTINGS:
        raise InputError(f"als: weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    m = matrix.tocsr(copy=True).astype(np.float32)
    if weighting == "log":
        m.data = 1.0 + np.log(np.maximum(m.data, 1.0))
    elif weighting == "binary":
        m.data = np.ones_like(m.data)
    m.data *= np.float32(alpha)
    return m


def use_gpu(choice: str) -> tuple[bool, str]:
    """Resolve --gpu auto|on|off: (train on the GPU?, why), the reason from `c360.recsys.gpu.gpu_status`."""
    if choice not in GPU_CHOICES:
        raise InputError(f"--gpu: must be one of {', '.join(GPU_CHOICES)}, not {choice!r}")
    if choice == "off":
        return False, "--gpu off"
    status = gpu_status()
    if choice == "on" and not status.available:
        raise InputError(f"--gpu on: implicit has no CUDA support here: {status.reason}")
    log.info("implicit ALS on the %s (--gpu %s: %s)", "GPU" if status.available else "CPU", choice,
             status.reason)
    return status.available, status.reason


@register
class ImplicitALS(FactorModel):
    """implicit.als.AlternatingLeastSquares; confidence = alpha * weighting(photos)."""

    name = "als"
    # Defaults chosen on a validation split carved from one training part of the shipped data (few items,
    # short histories: few factors, strong regularization); the speed benchmark sets its own.
    defaults = {"factors": 8, "regularization": 10.0, "alpha": 1.0, "iterations": 15, "weighting": "log",
                "seed": 0, "gpu": "auto"}

    def _fit(self, items, show_progress):
        gpu, reason = use_gpu(self.params["gpu"])  # first: it loads the CUDA libraries before implicit.gpu
        from implicit.als import AlternatingLeastSquares

        # implicit parallelises itself (and checks the BLAS pool when the model is made): BLAS threads only contend
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(factors=int(self.params["factors"]),
                                            regularization=float(self.params["regularization"]), alpha=1.0,
                                            iterations=int(self.params["iterations"]), use_gpu=gpu,
                                            random_state=int(self.params["seed"]))
            model.fit(self._weighted(self.matrix), show_progress=show_progress)
        if gpu:
            model = model.to_cpu()
        self.extra["device"] = "gpu" if gpu else "cpu"
        self.extra["gpu_reason"] = reason
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _weighted(self, m):
        return confidence(m, self.params["weighting"], float(self.params["alpha"]))

    def _cpu_model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(factors=self.item_factors_.shape[1],
                                        regularization=float(self.params["regularization"]), alpha=1.0)
        model.user_factors = self.user_factors
        model.item_factors = self.item_factors_
        return model

    def _scores(self, rows):
        return self.user_factors[rows] @ self.item_factors_.T

    def _scores_for_vector(self, vector):
        """implicit's recalculate_user: solve the user's factors against the fixed item factors."""
        user = self._cpu_model().recalculate_user(0, self._weighted(vector))
        return self.item_factors_ @ np.asarray(user, dtype=np.float32)

    def update_users(self, interactions: dict[str, dict[str, float]]) -> None:
        """Fold new or changed users in with implicit's partial_fit_users (item factors stay fixed)."""
        users = [str(u) for u in interactions]
        vectors = sp.vstack([self._vector(interactions[u]) for u in users]).tocsr()
        # a new data object for this model only: others sharing the old one (a blend, auto) keep theirs
        self.data = self.data.with_user_rows(users, vectors)
        rows = np.array([self.user_index[u] for u in users])
        model = self._cpu_model()
        model.partial_fit_users(rows, self._weighted(vectors))
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
