"""Differential privacy and personal data: pure kernels over NumPy arrays (no database).

Noise comes from OpenDP (``opendp.prelude``): every released number passes through an OpenDP measurement
(``make_laplace`` for counts and sums, ``make_laplace_threshold`` for the groups that may be shown,
``make_private_quantile`` for quantiles), and the privacy loss recorded for a release is what that
measurement's own privacy map says for the contribution bounds, not a formula of ours.

The privacy unit is whatever one person is in the data (a user id). The caller (SQL) has already bounded
contributions: each unit appears in at most ``max_groups`` groups and with at most ``max_rows`` rows per group,
and every value is clamped to its public bounds. Under those bounds, adding or removing one unit changes

* the distinct-unit count of at most ``max_groups`` groups by at most 1 (L0 = max_groups, Linf = 1),
* a row count by at most ``max_rows`` in each of those groups (L1 = max_groups * max_rows),
* a sum of values clamped to [lo, hi] by at most ``max_rows * max(|lo|, |hi|)`` per group,
* a group's list of values by at most ``max_rows`` insertions or deletions (quantiles).

The privacy budget ``epsilon`` of a release is split equally over its parts (group selection and each metric;
an average is a sum and a count, each with half of its share); the parts compose by basic composition, so the
release costs exactly ``epsilon`` (and the thresholding's ``delta``).

Also here: the A/B test and segment profiles released with noise, the personal-data detector used by
``data_quality`` and the trainers, and keyed hashing for pseudonyms and for category values kept in models.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidArgument

LAPLACE_95 = math.log(20.0)  # P(|Laplace(b)| > b ln 20) = 0.05
QUANTILE_CANDIDATES = 201


def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


# -- argument checks -----------------------------------------------------------------------------------------
def check_epsilon(value, argument: str = "epsilon") -> float:
    fix = f"Pass a positive privacy budget, e.g. {argument} := 1.0 (smaller is more private and noisier)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(argument, f"expected a positive number, got {value!r}", fix)
    if not (math.isfinite(value) and value > 0):
        raise InvalidArgument(argument, f"must be a positive finite number, got {value!r}", fix)
    if value > 100:
        raise InvalidArgument(argument, f"{value!r} is so large that the noise protects nobody", fix)
    return float(value)


def check_delta(value, argument: str = "delta") -> float:
    fix = f"Pass a small probability, e.g. {argument} := 1e-6 (well below one over the number of people)"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < 0.01):
        raise InvalidArgument(argument, f"expected a number strictly between 0 and 0.01, got {value!r}", fix)
    return float(value)


def check_count(value, argument: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not 1 <= value <= 1000:
        raise InvalidArgument(argument, f"expected a whole number from 1 to 1000, got {value!r}",
                              f"Pass e.g. {argument} := {default}")
    return int(value)


def check_bounds(value, argument: str) -> tuple[float, float]:
    fix = f"Pass public bounds as a two-number list, e.g. {argument} := [0, 500] (values outside are clamped)"
    if not isinstance(value, (list, tuple)) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value):
        raise InvalidArgument(argument, f"expected [lower, upper], got {value!r}", fix)
    lo, hi = float(value[0]), float(value[1])
    if not lo < hi:
        raise InvalidArgument(argument, f"the lower bound {lo:g} is not below the upper bound {hi:g}", fix)
    return lo, hi


# -- OpenDP mechanisms ---------------------------------------------------------------------------------------
@dataclass
class Noisy:
    """A released vector with the Laplace scale used and the privacy loss OpenDP's privacy map reports."""

    values: np.ndarray
    scale: float
    epsilon: float


def laplace(values: np.ndarray, sensitivity: float, epsilon: float, integer: bool = False) -> Noisy:
    """Add Laplace noise calibrated to an L1 ``sensitivity`` so that the release costs ``epsilon``.

    Counts use OpenDP's discrete Laplace on integers (exact, no floating-point attack surface)."""
    dp = _opendp()
    values = np.asarray(values)
    scale = sensitivity / epsilon
    if integer:
        space = (dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int))
        d_in, data = int(math.ceil(sensitivity)), [int(v) for v in values]
    else:
        space = (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float))
        d_in, data = float(sensitivity), [float(v) for v in values]
    meas = dp.m.make_laplace(*space, scale=scale)
    spent = float(meas.map(d_in))
    if spent > epsilon * (1 + 1e-9):  # OpenDP's map rounds conservatively: widen the scale until it fits
        scale *= spent / epsilon * (1 + 1e-9)
        meas = dp.m.make_laplace(*space, scale=scale)
        spent = float(meas.map(d_in))
    out = np.asarray(meas(data) if len(data) else [], dtype=float)
    return Noisy(out, float(scale), spent)


@dataclass
class Selection:
    """Groups whose noisy distinct-unit count passed the threshold."""

    keep: np.ndarray  # indices into the input
    counts: np.ndarray  # their noisy counts
    scale: float
    threshold: float
    epsilon: float
    delta: float


def select_groups(counts: np.ndarray, max_groups: int, epsilon: float, delta: float) -> Selection:
    """Release only groups whose noisy unit count reaches a threshold ``tau`` chosen so that a group that
    exists because of a few people appears with probability at most ``delta`` overall (OpenDP
    ``make_laplace_threshold``: each unit changes at most ``max_groups`` counts, each by at most 1)."""
    dp = _opendp()
    counts = np.asarray(counts, dtype=np.int64)
    scale = max_groups / epsilon
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    d_in = (max_groups, max_groups, 1)
    tau = int(math.ceil(1 + scale * math.log(max_groups / (2 * delta))))
    while True:
        meas = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=tau)
        eps_spent, delta_spent = meas.map(d_in)
        if eps_spent > epsilon * (1 + 1e-9):
            scale *= eps_spent / epsilon * (1 + 1e-9)
            continue
        if delta_spent <= delta:
            break
        tau += max(1, int(scale / 4))
    released = meas({str(i): int(c) for i, c in enumerate(counts)})
    keep = np.array(sorted(int(k) for k in released), dtype=np.int64)
    return Selection(keep, np.array([float(released[str(i)]) for i in keep]), float(scale), float(tau),
                     float(eps_spent), float(delta_spent))


def private_quantile(values: np.ndarray, lo: float, hi: float, alpha: float, epsilon: float, max_rows: int) -> tuple[float, float, float]:
    """(quantile, scale, epsilon spent): OpenDP's exponential-mechanism quantile over evenly spaced candidates
    in [lo, hi]; one unit inserts or deletes at most ``max_rows`` values."""
    dp = _opendp()
    candidates = [float(c) for c in np.linspace(lo, hi, QUANTILE_CANDIDATES)]
    space = (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance(), dp.max_divergence())
    unit = dp.m.make_private_quantile(*space, candidates=candidates, alpha=float(alpha), scale=1.0).map(max_rows)
    scale = float(unit) / epsilon
    meas = dp.m.make_private_quantile(*space, candidates=candidates, alpha=float(alpha), scale=scale)
    spent = float(meas.map(max_rows))
    if spent > epsilon * (1 + 1e-9):
        scale *= spent / epsilon * (1 + 1e-9)
        meas = dp.m.make_private_quantile(*space, candidates=candidates, alpha=float(alpha), scale=scale)
        spent = float(meas.map(max_rows))
    return float(meas(np.clip(np.asarray(values, dtype=float), lo, hi).tolist())), scale, spent


# -- DP aggregates -------------------------------------------------------------------------------------------
_METRIC = re.compile(r"^\s*(count)\s*(?:\(\s*\*?\s*\))?\s*$|^\s*(sum|avg|mean)\s*\(\s*([^(),]+?)\s*\)\s*$"
                     r"|^\s*(quantile|median)\s*\(\s*([^(),]+?)\s*(?:,\s*([0-9.eE+-]+)\s*)?\)\s*$", re.IGNORECASE)
METRIC_HELP = "Write metrics := ['count', 'sum(revenue)', 'avg(revenue)', 'quantile(revenue, 0.5)', 'median(revenue)']"


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # count | sum | avg | quantile
    column: str | None = None
    alpha: float | None = None

    @property
    def name(self) -> str:
        if self.kind == "count":
            return "count"
        if self.kind == "quantile":
            return f"quantile({self.column}, {self.alpha:g})"
        return f"{self.kind}({self.column})"


def parse_metrics(metrics) -> list[MetricSpec]:
    """['count', 'sum(revenue)', 'avg(revenue)', 'quantile(revenue, 0.5)'] -> specs (column names unresolved)."""
    if metrics is None:
        return [MetricSpec("count")]
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list) or not metrics:
        raise InvalidArgument("metrics", f"expected a list of metrics, got {metrics!r}", METRIC_HELP)
    out = []
    for text in metrics:
        m = _METRIC.match(text) if isinstance(text, str) else None
        if not m:
            raise InvalidArgument("metrics", f"cannot read the metric {text!r}", METRIC_HELP)
        if m.group(1):
            spec = MetricSpec("count")
        elif m.group(2):
            kind = m.group(2).lower()
            spec = MetricSpec("avg" if kind == "mean" else kind, m.group(3).strip('"'))
        else:
            alpha = 0.5 if m.group(4).lower() == "median" or m.group(6) is None else float(m.group(6))
            if not 0 <= alpha <= 1:
                raise InvalidArgument("metrics", f"the quantile level in {text!r} must lie in [0, 1]", METRIC_HELP)
            spec = MetricSpec("quantile", m.group(5).strip('"'), alpha)
        if spec in out:
            raise InvalidArgument("metrics", f"{spec.name} is listed twice", "List each metric once")
        out.append(spec)
    return out


@dataclass
class GroupAggregates:
    """Per-group aggregates of the bounded rows, computed by the caller (SQL) in one pass.

    ``units``: distinct privacy units; ``rows``: rows; per value column: ``sums`` of clamped values,
    ``nonnull`` counts and (for quantiles) ``values`` (one array of clamped values per group)."""

    units: np.ndarray
    rows: np.ndarray
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    nonnull: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)


@dataclass
class Release:
    rows: list[dict]  # group (index into the input), metric, value, noise_scale, ci_low, ci_high, epsilon
    epsilon: float
    delta: float
    notes: list[str]


def dp_aggregate(agg: GroupAggregates, metrics: list[MetricSpec], bounds: dict[str, tuple[float, float]],
                 epsilon: float, delta: float, max_groups: int, max_rows: int, grouped: bool,
                 rng: np.random.Generator | None = None) -> Release:
    """Release each metric per group with Laplace noise; with ``grouped``, groups are first selected by a
    thresholded noisy count of their units so that no group exists in the output because of a few people."""
    rng = rng or np.random.default_rng()
    notes: list[str] = []
    reuse_count = max_rows == 1 and grouped  # a bounded row count then equals the unit count: release it once
    parts = len(metrics) + (1 if grouped and not (reuse_count and MetricSpec("count") in metrics) else 0)
    share = epsilon / parts
    n_groups = len(agg.units)
    if grouped:
        sel = select_groups(agg.units, max_groups, share, delta)
        keep = sel.keep
        # never say how many groups were suppressed: the exact number of groups in the data is not private
        notes.append(f"rare groups suppressed: a group is shown only when its noisy count of privacy units reaches "
                     f"{sel.threshold:g} (Laplace scale {sel.scale:g}, delta {sel.delta:.3g})")
        spent_eps, spent_delta = sel.epsilon, sel.delta
    else:
        sel, keep, spent_eps, spent_delta = None, np.arange(n_groups), 0.0, 0.0
    rows: list[dict] = []

    def emit(spec: MetricSpec, values, scale, eps, lows, highs, mechanism):
        scales = np.broadcast_to(np.asarray(scale, dtype=float), (len(keep),))  # one scale, or one per group
        for j, g in enumerate(keep):
            rows.append(dict(group=int(g), metric=spec.name, value=float(values[j]), noise_scale=float(scales[j]),
                             ci_low=None if lows is None else float(lows[j]),
                             ci_high=None if highs is None else float(highs[j]), epsilon=eps, mechanism=mechanism))

    l1_rows = max_groups * max_rows
    for spec in metrics:
        if spec.kind == "count":
            if reuse_count and sel is not None:
                v, scale, eps = sel.counts, sel.scale, 0.0
                mech = "laplace threshold (shared with group selection)"
            else:
                noisy = laplace(agg.rows[keep], l1_rows, share, integer=True)
                v, scale, eps, mech = noisy.values, noisy.scale, noisy.epsilon, "discrete laplace"
                spent_eps += eps
            v = np.maximum(v, 0.0)
            half = scale * LAPLACE_95
            emit(spec, v, scale, eps, np.maximum(v - half, 0), v + half, mech)
        elif spec.kind == "sum":
            lo, hi = bounds[spec.column]
            noisy = laplace(agg.sums[spec.column][keep], l1_rows * max(abs(lo), abs(hi)), share)
            spent_eps += noisy.epsilon
            half = noisy.scale * LAPLACE_95
            emit(spec, noisy.values, noisy.scale, noisy.epsilon, noisy.values - half, noisy.values + half, "laplace")
        elif spec.kind == "avg":
            lo, hi = bounds[spec.column]
            mid, rad = (lo + hi) / 2, (hi - lo) / 2
            n = agg.nonnull[spec.column][keep]
            centred = agg.sums[spec.column][keep] - mid * n
            noisy_n = laplace(n, l1_rows, share / 2, integer=True)
            noisy_s = laplace(centred, l1_rows * rad, share / 2)
            spent_eps += noisy_n.epsilon + noisy_s.epsilon
            value, low, high, sd = ratio_release(noisy_s.values, noisy_n.values, noisy_s.scale, noisy_n.scale, mid, lo, hi, rng)
            # the ratio's noise depends on the group's size: its simulated standard deviation per group
            emit(spec, value, sd, noisy_n.epsilon + noisy_s.epsilon, low, high, "laplace (sum / count)")
        else:  # quantile: one exponential mechanism per group; a unit sits in up to max_groups groups
            lo, hi = bounds[spec.column]
            eps_group = share / max_groups
            vals, scale, eps = [], None, 0.0
            for g in keep:
                q, scale, e = private_quantile(agg.values[spec.column][g], lo, hi, spec.alpha, eps_group, max_rows)
                vals.append(q)
                eps = e * max_groups
            spent_eps += eps if len(keep) else 0.0
            emit(spec, np.array(vals), scale, eps, None, None, "exponential mechanism (OpenDP private quantile)")
    if any(m.kind == "quantile" for m in metrics):
        notes.append("quantiles: noise_scale is the exponential mechanism's scale in ranks (no value interval)")
    return Release(rows, float(spent_eps), float(spent_delta), notes)


def ratio_release(noisy_sum: np.ndarray, noisy_n: np.ndarray, sum_scale: float, n_scale: float, mid: float,
                  lo: float, hi: float, rng: np.random.Generator, draws: int = 4000):
    """Average = mid + noisy centred sum / noisy count, clamped to [lo, hi], with a 95% interval and the standard
    deviation of its noise, simulated from the released numbers and the public scales (post-processing: free)."""
    n = np.maximum(noisy_n, 1.0)
    value = np.clip(mid + noisy_sum / n, lo, hi)
    if not len(n):
        return value, value, value, np.zeros(0, dtype=float)
    ls = rng.laplace(0.0, sum_scale, (draws, len(n)))
    ln = rng.laplace(0.0, n_scale, (draws, len(n)))
    sim = np.clip(mid + (noisy_sum[None, :] + ls) / np.maximum(n[None, :] + ln, 1.0), lo, hi)
    err = sim - np.clip(mid + noisy_sum / n, lo, hi)[None, :]
    q_lo, q_hi = np.quantile(err, [0.025, 0.975], axis=0)
    return value, np.clip(value - q_hi, lo, hi), np.clip(value - q_lo, lo, hi), err.std(axis=0)


# -- DP A/B test ---------------------------------------------------------------------------------------------
def dp_arm_statistics(codes: np.ndarray, y: np.ndarray, k: int, lo: float, hi: float, binary: bool,
                      epsilon: float) -> dict:
    """Noisy per-variant count, centred sum and (non-binary) centred sum of squares; each unit is in one
    variant, so the variants compose in parallel and the release costs ``epsilon`` once."""
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    yc = np.clip(y, lo, hi) - mid
    n = np.bincount(codes, minlength=k)
    s = np.bincount(codes, weights=yc, minlength=k)
    parts = 2 if binary else 3
    noisy_n = laplace(n, 1, epsilon / parts, integer=True)
    noisy_s = laplace(s, rad, epsilon / parts)
    out = dict(n=np.maximum(noisy_n.values, 2.0), s=noisy_s.values, n_scale=noisy_n.scale, s_scale=noisy_s.scale,
               mid=mid, rad=rad, epsilon=noisy_n.epsilon + noisy_s.epsilon, q=None, q_scale=None)
    if not binary:
        noisy_q = laplace(np.bincount(codes, weights=yc ** 2, minlength=k), rad ** 2, epsilon / parts)
        out.update(q=noisy_q.values, q_scale=noisy_q.scale)
        out["epsilon"] += noisy_q.epsilon
    return out


def dp_ab_compare(st: dict, control: int, treatments: list[int], level: float, binary: bool,
                  rng: np.random.Generator, draws: int = 20000) -> list[dict]:
    """Lift of each treatment over the control with intervals that carry both the sampling error and the
    privacy noise: a parametric bootstrap from the released statistics (post-processing, no extra budget)."""
    n, s, mid, rad = st["n"], st["s"], st["mid"], st["rad"]
    mean_c = s / n  # centred
    if binary:
        p = np.clip(mean_c + mid, 0, 1)
        var = p * (1 - p)
    else:
        var = np.clip(st["q"] / n - mean_c ** 2, 0, rad ** 2)
    means = mean_c + mid

    def simulate(i):
        xbar = rng.normal(mean_c[i], np.sqrt(var[i] / n[i]), draws)
        nn = np.maximum(n[i] + rng.laplace(0, st["n_scale"], draws), 1.0)
        return np.clip(mid + (xbar * n[i] + rng.laplace(0, st["s_scale"], draws)) / nn, mid - rad, mid + rad)

    from scipy import stats

    sim_c = simulate(control)
    a = 1 - level
    out = []
    for i in treatments:
        sim_t = simulate(i)
        diff = means[i] - means[control]
        err = (sim_t - sim_c) - diff
        e_lo, e_hi = np.quantile(err, [a / 2, 1 - a / 2])
        sd = float(err.std())
        p = float(2 * stats.norm.sf(abs(diff) / sd)) if sd > 0 else (1.0 if diff == 0 else 0.0)
        rel = rel_lo = rel_hi = None
        if abs(means[control]) > 1e-12:
            ratio = sim_t / np.where(np.abs(sim_c) > 1e-12, sim_c, np.nan)
            r = means[i] / means[control] - 1
            rerr = ratio - 1 - r
            rerr = rerr[np.isfinite(rerr)]
            if len(rerr):
                q1, q2 = np.quantile(rerr, [a / 2, 1 - a / 2])
                rel, rel_lo, rel_hi = float(r), float(r - q2), float(r - q1)
        out.append(dict(variant=i, lift=float(diff), ci_low=float(diff - e_hi), ci_high=float(diff - e_lo), p=p,
                        relative_lift=rel, relative_ci_low=rel_lo, relative_ci_high=rel_hi))
    return out


# -- DP segment profiles -------------------------------------------------------------------------------------
def dp_segment_sums(seg: np.ndarray, X: np.ndarray, k: int, bounds: list[tuple[float, float]], epsilon: float,
                    rng: np.random.Generator) -> dict:
    """Noisy per-segment size and per-feature means of clamped values (NULLs count as the bound's midpoint):
    one unit is one row in one segment, so segments compose in parallel; ``epsilon`` is split over the size
    and the features."""
    idx = seg - 1
    parts = 1 + X.shape[1]
    noisy_n = laplace(np.bincount(idx, minlength=k), 1, epsilon / parts, integer=True)
    means, lows, highs, spent = [], [], [], noisy_n.epsilon
    for j, (lo, hi) in enumerate(bounds):
        mid, rad = (lo + hi) / 2, (hi - lo) / 2
        col = np.where(np.isnan(X[:, j]), mid, np.clip(X[:, j], lo, hi)) - mid
        noisy_s = laplace(np.bincount(idx, weights=col, minlength=k), rad, epsilon / parts)
        spent += noisy_s.epsilon
        v, l, h, _ = ratio_release(noisy_s.values, noisy_n.values, noisy_s.scale, noisy_n.scale, mid, lo, hi, rng)
        means.append(v), lows.append(l), highs.append(h)
    half = noisy_n.scale * LAPLACE_95
    return dict(n=np.maximum(noisy_n.values, 0.0), n_low=np.maximum(noisy_n.values - half, 0), n_high=noisy_n.values + half,
                means=np.column_stack(means), lows=np.column_stack(lows), highs=np.column_stack(highs), epsilon=spent)


# -- personal data -------------------------------------------------------------------------------------------
PERSONAL_NAMES = [
    ("email address", re.compile(r"(^|_)(e_?mail|email_address|mail)($|_)", re.I)),
    ("phone number", re.compile(r"(^|_)(phone|mobile|cell|telephone|tel|msisdn|fax)($|_|_?(no|number|num)$)", re.I)),
    ("person's name", re.compile(r"^(first|last|full|given|family|middle|sur|maiden|customer|user|contact|display)_?name$"
                                 r"|^(surname|forename|name)$", re.I)),
    ("postal address", re.compile(r"(^|_)(address|addr|street|street_address|address_line\d*|zip|zip_code|zipcode|"
                                  r"postcode|postal_code|house_number)($|_)", re.I)),
    ("birth date", re.compile(r"(^|_)(birth|birthday|birthdate|dob|date_of_birth|born|birth_date)($|_)", re.I)),
    ("government or bank identifier", re.compile(r"(^|_)(ssn|social_security|passport|national_id|tax_id|iban|"
                                                 r"credit_card|card_number|ccn)($|_)", re.I)),
    ("IP address", re.compile(r"(^|_)(ip|ip_address|ipv4|ipv6)($|_)", re.I)),
]
PERSONAL_VALUES = [
    ("email address", r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"),
    ("phone number", r"^\+?[0-9][0-9 ().-]{6,}[0-9]$"),
    ("postal address", r"^[0-9]{1,5}[A-Za-z]? [A-Za-z0-9 .'-]+ (St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Ln|Lane|Dr|"
                       r"Drive|Way|Ct|Court|Pl|Place|Sq|Square|Ter|Terrace|Str|Strasse|Straße)\.?\b.*$"),
    ("person's name", r"^[A-Z][a-z]+(-[A-Z][a-z]+)? [A-Z][a-z]+(-[A-Z][a-z]+)?$"),
    ("IP address", r"^([0-9]{1,3}\.){3}[0-9]{1,3}$"),
]
VALUE_SHARE = 0.8  # share of a sample's non-empty values that must match a value pattern


def personal_kind_by_name(name: str) -> str | None:
    for kind, pattern in PERSONAL_NAMES:
        if pattern.search(name):
            return kind
    return None


def personal_kind_by_values(sample, distinct_share: float) -> str | None:
    """The kind of personal data a text sample (an Arrow string array) looks like, from whole-column regex
    matches; names need many distinct values (``distinct_share``) so that 'Credit Card' as a category passes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.utf8_trim_whitespace(pa.array(sample, pa.string()).drop_null())
    values = values.filter(pc.greater(pc.utf8_length(values), 0))
    if len(values) < 5:
        return None
    phone_digits = pc.utf8_length(pc.replace_substring_regex(values, r"[^0-9]", ""))
    for kind, pattern in PERSONAL_VALUES:
        hit = pc.match_substring_regex(values, pattern)
        if kind == "phone number":
            hit = pc.and_(hit, pc.greater_equal(phone_digits, 7))
        if kind == "person's name" and distinct_share < 0.3:
            continue
        if (pc.sum(hit).as_py() or 0) >= VALUE_SHARE * len(values):
            return kind
    return None


def keyed_hash_pads(key: str) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104), so SQL can compute
    sha256(opad || sha256(ipad || message)) column-wise."""
    if not isinstance(key, str) or len(key) < 16:
        raise InvalidArgument("key", "expected a secret text of at least 16 characters",
                              "Pass a long random secret, best bound as a query parameter (key := $key), and keep it out of the data")
    k = key.encode("utf-8")
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def hash_categories(values, salt: str):
    """Category values as salted SHA-256 digests (16 hex characters), over an Arrow string array: only the
    distinct values are hashed, then mapped back by dictionary index (no per-row Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(pa.array(values) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    digests = pa.array([hashlib.sha256((salt + str(v)).encode("utf-8")).hexdigest()[:16]
                        for v in enc.dictionary.to_pylist()], pa.string())
    return digests.take(enc.indices)


def dp_ab_test(variants, metric: np.ndarray, epsilon: float, bounds: tuple[float, float] | None = None, control=None,
               alpha: float = 0.05, labels=None, split=None, rng: np.random.Generator | None = None):
    """``tasks.abtest.ab_test`` released with differential privacy: per variant, a noisy count, clamped sum and
    (with ``bounds``) sum of squares; lifts, intervals and p-values come from a parametric bootstrap over
    sampling error and privacy noise together, so the intervals widen by exactly what the noise adds.

    Without ``bounds`` the metric is taken as a rate in [0, 1] (clamped, never inspected: whether the data holds
    other values would itself leak) and its variance as p(1 - p), an upper bound for any [0, 1] metric. Each
    privacy unit is one row in one variant; the variant labels are treated as public (the design)."""
    from scipy import stats

    from . import abtest as ab

    rng = rng or np.random.default_rng()
    alpha = ab.check_probability("alpha", alpha, "Pass e.g. alpha := 0.05")
    codes, levels = ab.encode_variants(variants, labels)
    y = np.asarray(metric, dtype=float)
    if len(levels) < 2:
        raise InvalidArgument("variant", "an A/B test needs at least two variants",
                              "Pass the column that holds the assignment (e.g. variant := 'variant')")
    control_label = ab._pick_control(levels, control)
    c_idx = int(np.where(levels == control_label)[0][0])
    others = [i for i in range(len(levels)) if i != c_idx]
    valid = (codes >= 0) & ~np.isnan(y)
    codes, y = codes[valid], y[valid]
    binary = bounds is None
    lo, hi = (0.0, 1.0) if bounds is None else bounds
    st = dp_arm_statistics(codes, y, len(levels), lo, hi, binary, epsilon)
    m = len(others)
    level = 1 - alpha / m if m > 1 else 1 - alpha
    comps = dp_ab_compare(st, c_idx, others, level, binary, rng)
    p_raw = np.array([c["p"] for c in comps])
    if m > 1:
        from statsmodels.stats.multitest import multipletests

        p_adj = multipletests(p_raw, alpha=alpha, method="holm")[1]
    else:
        p_adj = p_raw
    n = np.round(st["n"]).astype(np.int64)
    shares = ab._split_shares(split, levels, [c_idx] + others)
    srm_p = float(stats.chisquare(n.astype(float), f_exp=shares * n.sum()).pvalue)
    means = st["s"] / st["n"] + st["mid"]
    name = f"differentially private (epsilon {epsilon:g}): bootstrap over sampling and Laplace noise"
    base = dict(test=name, srm_p_value=srm_p, n_excluded=None)
    rows = [dict(base, variant=str(levels[c_idx]), is_control=True, n=int(n[c_idx]), mean=float(means[c_idx]),
                 lift=None, ci_low=None, ci_high=None, relative_lift=None, relative_ci_low=None, relative_ci_high=None,
                 p_value=None, p_value_raw=None, significant=None)]
    for c, pa_, pr in zip(comps, p_adj, p_raw):
        i = c["variant"]
        rows.append(dict(base, variant=str(levels[i]), is_control=False, n=int(n[i]), mean=float(means[i]),
                         lift=c["lift"], ci_low=c["ci_low"], ci_high=c["ci_high"], relative_lift=c["relative_lift"],
                         relative_ci_low=c["relative_ci_low"], relative_ci_high=c["relative_ci_high"],
                         p_value=float(pa_), p_value_raw=float(pr), significant=bool(pa_ < alpha)))
    notes = [f"differential privacy: counts, sums{'' if binary else ' and sums of squares'} per variant with Laplace "
             f"noise (epsilon {st['epsilon']:.6g} in all; values clamped to [{lo:g}, {hi:g}]); n and mean are noisy, "
             "intervals and p-values include the noise; SRM uses the noisy counts"]
    if m > 1:
        notes.append(f"{m} comparisons with the control: p-values Holm-adjusted, intervals at {100 * level:.4g}% (Bonferroni)")
    return rows, notes, st["epsilon"]
