"""`gru` scorer of the session model: a small GRU over the trip so far, a softmax over the park's attractions.

Each step of a trip feeds the GRU its attraction's embedding and STEP_INPUTS (minutes since the previous attraction
and since the trip's start, position, hour of the day, walking minutes from the previous attraction). After each
step the next attraction's logit is `h @ out + bias` plus learned weights on per-candidate inputs: walking minutes
from the current attraction, whether the visitor had it in an earlier trip and (`gru_transitions`, default on) the
transition count and share from the current attraction, counted on the other folds' trips in training (as the
re-rankers' features: counts holding the trip itself would teach "count - 1 = the answer"). The softmax runs over
the candidates only (the current attraction's park, less the trip so far). Trained with Adam on next-item
cross-entropy over every step of the training trips, dropout on the hidden states the output reads, forward and
backward written out in numpy (a test checks the gradient numerically), early-stopped on the held-out loss of a
seeded share (`gru_holdout`) of those trips: the weights of the best epoch are kept.

Deterministic given the seed; the fitted model is plain arrays (`gru_*`), scoring needs only numpy.
"""

from __future__ import annotations

import dataclasses

import numpy as np

STEP_INPUTS = ("gap_log_min", "first_step", "elapsed_log_min", "position", "hour_sin", "hour_cos", "walk_log_min")
PREFIX = "gru_"
# batches hold (trips x steps x items x inputs) candidate arrays and training (folds x items x items) counts:
# a few parks of tens of attractions are far below; above this `auto` leaves the GRU out
MAX_ITEMS = 1000
PARAM_NAMES = ("embed", "w_in", "w_rec", "b", "out", "bias", "w_cand")
# defaults of the session model's `gru_*` parameters
DEFAULTS = {"gru_hidden": 32, "gru_embedding": 16, "gru_epochs": 80, "gru_batch": 64, "gru_learning_rate": 0.003,
            "gru_l2": 1e-4, "gru_patience": 4, "gru_holdout": 0.1, "gru_transitions": True,
            "gru_dropout": 0.5}


@dataclasses.dataclass
class Batch:
    """Trips padded to the longest: after step t of trip b (items[b, t]), the next attraction target[b, t]
    (-1: none to learn, the trip ended or it is no candidate) among candidates[b, t]."""

    items: np.ndarray        # (B, T) int, 0 past a trip's end
    inputs: np.ndarray       # (B, T, len(STEP_INPUTS))
    length: np.ndarray       # (B,)
    candidates: np.ndarray   # (B, T, n) bool
    cand_inputs: np.ndarray  # (B, T, n, 2): log walking minutes current -> candidate, in an earlier trip
    target: np.ndarray       # (B, T) int


def transition_inputs(next_counts: np.ndarray) -> np.ndarray:
    """(n, n, 2) per (current, candidate) inputs from transition counts: log count, share of the current's."""
    out = next_counts.sum(axis=1, keepdims=True)
    return np.stack([np.log1p(next_counts) / 3.0, next_counts / np.maximum(out, 1.0)], axis=-1)


def make_batch(trips: list, walk: np.ndarray, codes: np.ndarray, priors: np.ndarray | None = None,
               prior_of: np.ndarray | None = None) -> Batch:
    """`trips`: objects with `items`, `times` (first visits, in order) and `history` (bool per item); `priors`
    (P, n, n, k) `transition_inputs` of P sets of counts, trip b reads set `prior_of[b]` (default 0)."""
    n, B = len(codes), len(trips)
    T = max([len(t.items) for t in trips] + [1])
    items = np.zeros((B, T), np.int64)
    times = np.zeros((B, T), np.int64)
    length = np.array([len(t.items) for t in trips], np.int64)
    for b, t in enumerate(trips):
        items[b, :length[b]], times[b, :length[b]] = t.items, t.times
        if length[b]:
            times[b, length[b]:] = t.times[-1]
    live = np.arange(T)[None, :] < length[:, None]
    walk_log = np.log1p(np.nan_to_num(np.maximum(walk, 0.0), nan=0.0))
    prev = np.concatenate([items[:, :1], items[:, :-1]], axis=1)
    prev_times = np.concatenate([times[:, :1], times[:, :-1]], axis=1)
    hour = (times // 3600) % 24 * (2 * np.pi / 24)
    first = np.zeros((B, T))
    first[:, 0] = 1.0
    inputs = np.stack([np.log1p(np.maximum(times - prev_times, 0) / 60.0) / 5.0, first,
                       np.log1p(np.maximum(times - times[:, :1], 0) / 60.0) / 5.0,
                       np.log1p(np.arange(T))[None, :].repeat(B, 0), np.sin(hour), np.cos(hour),
                       walk_log[prev, items] / 3.0], axis=-1) * live[..., None]
    visited = np.zeros((B, T, n), bool)
    for t in range(T):
        visited[:, t:, :] |= (np.eye(n, dtype=bool)[items[:, t]] & live[:, t:t + 1])[:, None, :]
    candidates = (codes[None, None, :] == codes[items][..., None]) & ~visited & live[..., None]
    history = np.array([t.history for t in trips], dtype=np.float64).reshape(B, n)
    cand_inputs = np.stack([walk_log[items] / 3.0, np.broadcast_to(history[:, None, :], (B, T, n))], axis=-1)
    if priors is not None:
        prior_of = np.zeros(B, np.int64) if prior_of is None else np.asarray(prior_of, np.int64)
        cand_inputs = np.concatenate([cand_inputs, priors[prior_of[:, None], items]], axis=-1)
    nxt = np.concatenate([items[:, 1:], np.zeros((B, 1), np.int64)], axis=1)
    has_next = np.arange(T)[None, :] < (length - 1)[:, None]
    ok = has_next & np.take_along_axis(candidates, nxt[..., None], axis=2)[..., 0]
    return Batch(items, inputs, length, candidates, cand_inputs, np.where(ok, nxt, -1))


def init_params(n: int, embedding: int, hidden: int, rng: np.random.Generator,
                cand_inputs: int = 2) -> dict[str, np.ndarray]:
    d = embedding + len(STEP_INPUTS)
    return {"embed": rng.normal(0.0, 0.1, (n, embedding)),
            "w_in": rng.normal(0.0, 1.0 / np.sqrt(d), (d, 3 * hidden)),
            "w_rec": rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, 3 * hidden)),
            "b": np.zeros(3 * hidden), "out": rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, n)),
            "bias": np.zeros(n), "w_cand": np.zeros(cand_inputs)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def forward(p: dict[str, np.ndarray], batch: Batch, keep: np.ndarray | None = None) -> tuple[np.ndarray, list]:
    """Logits (B, T, n), -inf outside the candidates, and the cache `loss_and_grad` needs; `keep` (B, T, H):
    dropout's scaled mask on the hidden states the output reads (training only)."""
    B, T = batch.items.shape
    H = p["w_rec"].shape[0]
    x = np.concatenate([p["embed"][batch.items], batch.inputs], axis=-1)       # (B, T, D)
    a = x @ p["w_in"] + p["b"]
    h = np.zeros((B, H))
    hs, cache = np.empty((B, T, H)), []
    for t in range(T):
        u = h @ p["w_rec"]
        z = _sigmoid(a[:, t, :H] + u[:, :H])
        r = _sigmoid(a[:, t, H:2 * H] + u[:, H:2 * H])
        cand = np.tanh(a[:, t, 2 * H:] + r * u[:, 2 * H:])
        cache.append((h, z, r, cand, u[:, 2 * H:]))
        h = (1.0 - z) * cand + z * h
        hs[:, t] = h
    seen = hs if keep is None else hs * keep
    logits = seen @ p["out"] + p["bias"] + batch.cand_inputs @ p["w_cand"]
    return np.where(batch.candidates, logits, -np.inf), [x, seen, cache]


def loss_and_grad(p: dict[str, np.ndarray], batch: Batch, l2: float = 0.0,
                  keep: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """Mean next-item cross-entropy over the steps with a target (+ l2 / 2 * |weights|^2) and its gradient."""
    logits, (x, hs, cache) = forward(p, batch, keep)
    B, T, n = logits.shape
    H = p["w_rec"].shape[0]
    step = batch.target >= 0
    count = max(int(step.sum()), 1)
    top = np.where(batch.candidates.any(-1), logits.max(-1), 0.0)
    e = np.where(batch.candidates, np.exp(logits - top[..., None]), 0.0)
    total = e.sum(-1)
    prob = e / np.where(total > 0, total, 1.0)[..., None]
    target = np.maximum(batch.target, 0)
    picked = np.take_along_axis(logits, target[..., None], axis=2)[..., 0]
    loss = -np.sum(np.where(step, picked - top - np.log(np.where(total > 0, total, 1.0)), 0.0)) / count
    dlogits = prob.copy()
    bi, ti = np.nonzero(step)
    dlogits[bi, ti, batch.target[bi, ti]] -= 1.0
    dlogits *= step[..., None] / count
    g = {k: np.zeros_like(v) for k, v in p.items()}
    g["out"] = hs.reshape(-1, H).T @ dlogits.reshape(-1, n)
    g["bias"] = dlogits.sum((0, 1))
    g["w_cand"] = np.einsum("btn,btnk->k", dlogits, batch.cand_inputs)
    dhs = dlogits @ p["out"].T
    if keep is not None:
        dhs *= keep
    da = np.zeros((B, T, 3 * H))
    dh = np.zeros((B, H))
    for t in range(T - 1, -1, -1):
        h, z, r, cand, un = cache[t]
        dh = dh + dhs[:, t]
        dcand = dh * (1.0 - z)
        dz = dh * (h - cand)
        dpre_n = dcand * (1.0 - cand ** 2)
        dr = dpre_n * un
        dpre_z = dz * z * (1.0 - z)
        dpre_r = dr * r * (1.0 - r)
        da[:, t] = np.concatenate([dpre_z, dpre_r, dpre_n], axis=1)
        du = np.concatenate([dpre_z, dpre_r, dpre_n * r], axis=1)
        g["w_rec"] += h.T @ du
        dh = dh * z + du @ p["w_rec"].T
    D = x.shape[-1]
    g["w_in"] = x.reshape(-1, D).T @ da.reshape(-1, 3 * H)
    g["b"] = da.sum((0, 1))
    dx = da @ p["w_in"].T
    E = p["embed"].shape[1]
    np.add.at(g["embed"], batch.items.ravel(), dx[..., :E].reshape(-1, E))
    if l2:
        for k in ("embed", "w_in", "w_rec", "out"):
            loss += 0.5 * l2 * float(np.sum(p[k] ** 2))
            g[k] += l2 * p[k]
    return float(loss), g


def fit(trips: list, walk: np.ndarray, codes: np.ndarray, params: dict, seed: int, priors: np.ndarray | None = None,
        prior_of: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Arrays (`gru_*`) of a GRU trained on the trips with two attractions or more; {} when there is none.
    `priors`/`prior_of`: as `make_batch` (per trip: counts of trips other than itself). One BLAS thread: the
    matrices are small, and idle threads spin on a busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(trips, walk, codes, params, seed, priors, prior_of)


def _fit(trips, walk, codes, params, seed, priors, prior_of) -> dict[str, np.ndarray]:
    prior_of = np.zeros(len(trips), np.int64) if prior_of is None else np.asarray(prior_of)
    keep = [i for i, t in enumerate(trips) if len(t.items) >= 2]
    if len(keep) < 2:
        return {}
    rng = np.random.default_rng(seed)
    order = np.array(keep)[rng.permutation(len(keep))]
    held = max(1, int(round(float(params["gru_holdout"]) * len(keep))))
    valid_batch = make_batch([trips[i] for i in order[:held]], walk, codes, priors, prior_of[order[:held]])
    # batches of trips of similar length (little padding), drawn in a new order every epoch
    train = sorted(order[held:], key=lambda i: (len(trips[i].items), i))
    size = int(params["gru_batch"])
    batches = [make_batch([trips[i] for i in train[lo:lo + size]], walk, codes, priors,
                          prior_of[train[lo:lo + size]]) for lo in range(0, len(train), size)]
    p = init_params(len(codes), int(params["gru_embedding"]), int(params["gru_hidden"]), rng,
                    batches[0].cand_inputs.shape[-1] if batches else 2)
    lr, l2 = float(params["gru_learning_rate"]), float(params["gru_l2"])
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    best, best_loss, waited, step = {k: a.copy() for k, a in p.items()}, np.inf, 0, 0
    drop = float(params["gru_dropout"])
    for _ in range(int(params["gru_epochs"])):
        for i in rng.permutation(len(batches)):
            keep = None
            if drop > 0:
                shape = (*batches[i].items.shape, p["w_rec"].shape[0])
                keep = (rng.random(shape) >= drop) / (1.0 - drop)
            _, g = loss_and_grad(p, batches[i], l2, keep)
            step += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                p[k] -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
        held_loss, _ = loss_and_grad(p, valid_batch)
        if held_loss < best_loss - 1e-6:
            best, best_loss, waited = {k: a.copy() for k, a in p.items()}, held_loss, 0
        else:
            waited += 1
            if waited >= int(params["gru_patience"]):
                break
    return {PREFIX + k: a for k, a in best.items()}


def last_logits(arrays, trips: list, walk: np.ndarray, codes: np.ndarray, priors: np.ndarray | None = None,
                cells: int = 2_000_000) -> np.ndarray:
    """(len(trips), n) logits of the attraction after each whole trip so far; -inf outside its candidates.
    `priors`: (1, n, n, k) from the counts of every training trip, when the model was trained with them."""
    p = {k: arrays[PREFIX + k] for k in PARAM_NAMES}
    out = np.full((len(trips), len(codes)), -np.inf)
    sizes = np.array([len(t.items) for t in trips], np.int64)
    order = np.argsort(sizes, kind="stable")
    lo = 0
    while lo < len(trips):       # batches of trips of similar length, about `cells` (trip x step x item) each
        size = max(1, cells // (len(codes) * max(int(sizes[order[min(lo + 511, len(trips) - 1)]]), 1)))
        part = order[lo:lo + min(size, 512)]
        lo += len(part)
        b = make_batch([trips[i] for i in part], walk, codes, priors)
        logits, _ = forward(p, b)
        out[part] = logits[np.arange(len(part)), np.maximum(b.length - 1, 0)]
    return out
