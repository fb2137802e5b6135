"""Behavioural segments: k-means on standardised features, pure kernels over NumPy arrays (no database).

Preprocessing, stored with the model so that new users are assigned exactly like the training rows:
non-negative columns with strong right skew (skewness > 2, e.g. spend) are ``log1p``-transformed, NULLs are
filled with the training mean, and every column is standardised (mean 0, sd 1; constant columns are dropped
by the caller). k-means (scikit-learn, ``n_init=4``, fixed seed) runs on at most ``search_rows`` sampled rows;
with ``k='auto'`` each k in 2..max_k is scored by the silhouette on at most ``silhouette_rows`` of them and the
best is kept. When there are more rows, the chosen solution is refined on up to ``fit_rows`` of them, starting
from its centres; every row is then assigned to the nearest centre. Segments are numbered 1..k from the largest to the smallest.

A segment's profile is the mean of each standardised feature over its members: the description names the
(up to three) features furthest from the population, e.g. "high frequency, low recency days, very high
monetary", using "very" beyond one standard deviation and ignoring differences under 0.3.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SegmentModel:
    names: list[str]
    log_mask: np.ndarray  # bool per feature: log1p before standardising
    mean: np.ndarray  # per feature, after the log transform: fills NULLs, centres
    scale: np.ndarray
    centers: np.ndarray  # k x p, standardised space
    silhouette: float = float("nan")
    scores: dict[int, float] = field(default_factory=dict)  # k -> silhouette
    inertia: float = float("nan")

    @property
    def k(self) -> int:
        return int(self.centers.shape[0])

    def to_arrays(self) -> dict[str, np.ndarray]:
        ks = np.array(sorted(self.scores), dtype=np.int64)
        return dict(names=np.array(self.names, dtype=str), log_mask=self.log_mask, mean=self.mean, scale=self.scale,
                    centers=self.centers, silhouette=np.array(self.silhouette), inertia=np.array(self.inertia),
                    score_k=ks, score_value=np.array([self.scores[k] for k in ks.tolist()], dtype=float))

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "SegmentModel":
        return cls([str(n) for n in a["names"].tolist()], a["log_mask"].astype(bool), a["mean"], a["scale"],
                   a["centers"], float(a["silhouette"]),
                   dict(zip(a["score_k"].tolist(), a["score_value"].tolist())), float(a["inertia"]))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=float, copy=True)
        if self.log_mask.any():
            with np.errstate(invalid="ignore"):
                X[:, self.log_mask] = np.log1p(np.maximum(X[:, self.log_mask], 0))
        Z = (X - self.mean) / self.scale
        return np.where(np.isnan(Z), 0.0, Z)

    def assign(self, X: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Segment (1..k) and Euclidean distance to its centre, in standardised units."""
        seg = np.empty(len(X), dtype=np.int64)
        dist = np.empty(len(X), dtype=float)
        c2 = (self.centers ** 2).sum(1)
        for s in range(0, len(X), chunk):
            Z = self.transform(X[s:s + chunk])
            d2 = (Z ** 2).sum(1)[:, None] - 2 * Z @ self.centers.T + c2[None, :]
            j = d2.argmin(1)
            seg[s:s + chunk] = j + 1
            dist[s:s + chunk] = np.sqrt(np.maximum(d2[np.arange(len(Z)), j], 0))
        return seg, dist


def choose_log(X: np.ndarray, threshold: float = 2.0) -> np.ndarray:
    from scipy.stats import skew

    mask = np.zeros(X.shape[1], dtype=bool)
    for j in range(X.shape[1]):  # per feature, not per row
        col = X[:, j][~np.isnan(X[:, j])]
        if len(col) > 2 and col.min() >= 0 and np.ptp(col) > 0:
            mask[j] = float(skew(col)) > threshold
    return mask


def fit_segments(X: np.ndarray, names: list[str], k="auto", max_k: int = 8, seed: int = 0,
                 fit_rows: int = 100_000, silhouette_rows: int = 3_000,
                 search_rows: int = 10_000) -> SegmentModel:
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    log_mask = choose_log(X)
    Xt = X.copy()
    if log_mask.any():
        Xt[:, log_mask] = np.log1p(Xt[:, log_mask])
    mean = np.nanmean(Xt, axis=0)
    scale = np.nanstd(Xt, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model = SegmentModel(list(names), log_mask, mean, scale, np.zeros((1, p)))
    Z = model.transform(X)
    rng = np.random.default_rng(seed)
    Zfit = Z[rng.choice(n, fit_rows, replace=False)] if n > fit_rows else Z
    if k == "auto":
        candidates = list(range(2, min(max_k, len(Zfit) - 1) + 1))
    else:
        candidates = [int(k)]
    # k is chosen on at most search_rows rows; the chosen k is then refitted on all of Zfit
    Zsearch = Zfit[rng.choice(len(Zfit), search_rows, replace=False)] if len(Zfit) > search_rows else Zfit
    sil_idx = rng.choice(len(Zsearch), min(silhouette_rows, len(Zsearch)), replace=False)
    # small fits are far faster single-threaded: OpenMP start-up dominates and oversubscribes a busy machine
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        best, scores = _search(Zsearch, candidates, sil_idx, seed)
    km = best[1]
    if Zsearch is not Zfit:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=km.n_clusters, n_init=1, init=km.cluster_centers_, random_state=seed).fit(Zfit)
    sizes = np.bincount(km.labels_, minlength=km.n_clusters)
    order = np.argsort(-sizes, kind="stable")
    model.centers = km.cluster_centers_[order]
    model.scores = scores
    model.silhouette = scores[km.n_clusters]
    model.inertia = float(km.inertia_)
    return model


def _search(Zfit: np.ndarray, candidates: list[int], sil_idx: np.ndarray, seed: int):
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    best, scores = None, {}
    for kk in candidates:  # a handful of k values, each fitted on whole arrays
        km = KMeans(n_clusters=kk, n_init=4, random_state=seed).fit(Zfit)
        labels = km.labels_[sil_idx]
        if len(np.unique(labels)) > 1:
            scores[kk] = float(silhouette_score(Zfit[sil_idx], labels))
        else:
            scores[kk] = float("nan")
        score = scores[kk] if not np.isnan(scores[kk]) else -np.inf
        if best is None or score > best[0]:
            best = (score, km)
    return best, scores


def _level(z: float) -> str:
    a = abs(z)
    word = "high" if z > 0 else "low"
    return f"very {word}" if a >= 1.0 else word


def humanise(name: str) -> str:
    return name.replace("_", " ").strip()


def describe(z: np.ndarray, names: list[str], top: int = 3, min_z: float = 0.3) -> str:
    """A segment in words from its mean standardised features, e.g. 'high frequency, very low recency days'."""
    order = np.argsort(-np.abs(z), kind="stable")
    words = [f"{_level(z[j])} {humanise(names[j])}" for j in order[:top] if abs(z[j]) >= min_z]
    return ", ".join(words) if words else "close to average on every feature"


def profiles(model: SegmentModel, X: np.ndarray, seg: np.ndarray, top: int = 3, min_z: float = 0.3) -> list[dict]:
    """Per segment: n, share, mean of each raw feature, mean standardised feature, and a description."""
    Z = model.transform(X)
    k = model.k
    idx = seg - 1
    cnt = np.bincount(idx, minlength=k)
    zsum = np.zeros((k, Z.shape[1]))
    np.add.at(zsum, idx, Z)
    zmean = zsum / np.maximum(cnt, 1)[:, None]
    ok = ~np.isnan(X)
    raw_sum = np.zeros((k, X.shape[1]))
    raw_cnt = np.zeros((k, X.shape[1]))
    np.add.at(raw_sum, idx, np.where(ok, X, 0.0))
    np.add.at(raw_cnt, idx, ok.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        raw_mean = raw_sum / raw_cnt
    total = max(int(cnt.sum()), 1)
    out = []
    for s in range(k):  # one row per segment
        z = zmean[s]
        out.append(dict(segment=s + 1, n=int(cnt[s]), share=cnt[s] / total,
                        description=describe(z, model.names, top, min_z),
                        feature_means={model.names[j]: (None if np.isnan(raw_mean[s, j]) else float(raw_mean[s, j]))
                                       for j in range(len(model.names))},
                        feature_z={model.names[j]: float(z[j]) for j in range(len(model.names))}))
    return out


def simulate_users(n: int = 3000, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three behavioural groups with a known membership, for tests and the demo."""
    rng = np.random.default_rng(seed)
    group = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    freq_mu, rec_mu, spend_mu, disc_mu = (np.array([2.0, 12.0, 5.0]), np.array([120.0, 10.0, 40.0]),
                                          np.array([30.0, 80.0, 400.0]), np.array([0.1, 0.6, 0.05]))
    data = dict(
        user_id=np.arange(1, n + 1),
        frequency=np.maximum(rng.normal(freq_mu[group], 1.0), 0.0),
        recency_days=np.maximum(rng.normal(rec_mu[group], 8.0), 0.0),
        avg_order_value=np.maximum(rng.normal(spend_mu[group], spend_mu[group] * 0.15), 1.0),
        discount_share=np.clip(rng.normal(disc_mu[group], 0.05), 0, 1),
    )
    return data, group
