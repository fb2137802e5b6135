"""Next-purchase prediction from ordered event histories: a GRU over each user's last events (task 'sequence').

The question answered: *will this user purchase within the next ``horizon_days`` after ``as_of``?*

Data. An ``EventLog`` holds every event as parallel NumPy arrays sorted by (user, time): a user code, the time
in epoch seconds, an event-type id, an optional item id and whether the event is a purchase. For one cutoff
``c``, ``build_examples`` turns it into one example per user with events on or before ``c``, without a Python
loop over users or events (group boundaries, ``np.repeat`` and fancy indexing):

* the sequence of the user's last ``max_len`` events before ``c``, right-padded (id 0 = padding): event-type
  id, item id, and two numbers per step, ``log1p`` of the days since the previous event and of the days from
  the event to ``c``;
* aggregates of the whole history before ``c`` (the recency/frequency view): days since the last event, the
  first event and the last purchase, whether there was a purchase, event and purchase counts, and counts of
  each event type overall and in the last ``recent_days``;
* the label: a purchase in ``(c, c + horizon]``.

Training uses a **time-based holdout**: examples are built at ``windows`` earlier cutoffs ``as_of - k * horizon``
(k = 1..windows, so every training label lies on or before ``as_of``), and the model is tested on the users at
``as_of`` with their purchases in ``(as_of, as_of + horizon]``. Early stopping watches a validation share of the
training *users* (all windows of one user fall on the same side).

Network: event-type embedding (+ item embedding) and the step numbers -> GRU -> concatenated with the
standardised aggregates (``aggregates: false`` leaves them out: the sequence alone) -> a ReLU layer -> sigmoid.
Seeds fixed and op determinism on the CPU; mixed precision
on a GPU. The baseline reported next to it is a logistic regression on the same aggregates (no sequence).

Storage and scoring: the trained weights are plain float32 arrays (the store's ``npz`` format, loaded without
pickles), and scoring is a NumPy forward pass of the GRU, vectorised over users (one step of the recurrence per
position, for a block of users at once): scoring needs neither TensorFlow nor Keras. ``keras_forward_check``
compares it with Keras' own output.

TensorFlow is imported only when training (``tf_runtime.import_tf``: MissingDependency with the install command).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidArgument, TrainingFailed, did_you_mean

DAY = 86400.0
FORMAT_VERSION = 1
SCORE_CHUNK = 8192  # users per block of the NumPy forward pass
N_STEP = 2  # numbers per step: log1p(gap days), log1p(age days)

DEFAULTS = {
    "horizon_days": 14, "max_len": 50, "windows": 4, "recent_days": None, "lookback_days": None,
    "units": 32, "hidden": 16, "event_dim": 4, "item_dim": 8, "max_items": 1000, "max_event_types": 50,
    "epochs": 20, "batch_size": 128, "learning_rate": 3e-3, "patience": 3, "validation_fraction": 0.15,
    "random_state": 0, "aggregates": True,
}
_INT_LIMITS = {"max_len": (1, 1000), "windows": (1, 1000), "units": (1, 4096), "hidden": (0, 4096),
               "event_dim": (1, 256), "item_dim": (1, 256), "max_items": (1, 1_000_000),
               "max_event_types": (1, 10_000), "epochs": (1, 100_000), "batch_size": (1, 1 << 20),
               "patience": (1, 10_000), "random_state": (0, 2**31 - 1)}


def check_params(params: dict) -> dict:
    """The training parameters with defaults filled in; each bad value is an InvalidArgument naming it."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        k = unknown[0]
        raise InvalidArgument("params", f"'{k}' is not a parameter of task 'sequence'.{did_you_mean(k, DEFAULTS)}",
                              f"Use: {', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}

    def bad(name, problem, example):
        raise InvalidArgument("params" if name not in ("horizon_days",) else name, f"{name} {problem}",
                              f"Use e.g. params := {{{name}: {example}}}")

    for name, (lo, hi) in _INT_LIMITS.items():
        v = p[name]
        if isinstance(v, float) and v.is_integer():
            v = p[name] = int(v)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            bad(name, f"must be a whole number in [{lo}, {hi}], got {v!r}", DEFAULTS[name])
    for name, example in (("horizon_days", 14), ("recent_days", 30), ("lookback_days", 365)):
        v = p[name]
        if v is None and name != "horizon_days":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or not 0 < v <= 36500:
            bad(name, f"must be a number of days in (0, 36500], got {v!r}", example)
    if not isinstance(p["aggregates"], bool):
        bad("aggregates", f"must be true (the GRU also sees recency/frequency aggregates) or false (the sequence "
            f"alone), got {p['aggregates']!r}", "false")
    v = p["learning_rate"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 10:
        bad("learning_rate", f"must be a number in (0, 10], got {v!r}", DEFAULTS["learning_rate"])
    v = p["validation_fraction"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 0.9:
        bad("validation_fraction", f"must be a number in [0, 0.9], got {v!r}", DEFAULTS["validation_fraction"])
    return p


# -- the event log and the examples ----------------------------------------------------------------------------
@dataclass
class EventLog:
    """Every event as parallel arrays, sorted by (user, t); ids: event 1..n (n_event_ids - 1 = unknown), item 1 = other."""

    user: np.ndarray  # int64 codes into user_ids, non-decreasing
    t: np.ndarray  # float64 epoch seconds
    event: np.ndarray  # int32, >= 1
    purchase: np.ndarray  # bool
    user_ids: np.ndarray  # code -> user id (text)
    item: np.ndarray | None = None  # int32, >= 1

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Examples:
    users: np.ndarray  # user codes, one per example
    event: np.ndarray  # (n, L) int32, 0 = padding (right-padded)
    step: np.ndarray  # (n, L, N_STEP) float32, raw (standardised by the model)
    agg: np.ndarray  # (n, F) float32, raw
    n_events: np.ndarray  # events before the cutoff
    item: np.ndarray | None = None  # (n, L) int32
    label: np.ndarray | None = None  # (n,) float32
    cutoff: np.ndarray | None = None  # (n,) the cutoff of each example

    def __len__(self) -> int:
        return len(self.users)

    def take(self, idx: np.ndarray) -> "Examples":
        pick = (lambda a: None if a is None else a[idx])
        return Examples(self.users[idx], self.event[idx], self.step[idx], self.agg[idx], self.n_events[idx],
                        pick(self.item), pick(self.label), pick(self.cutoff))

    @staticmethod
    def concat(parts: list["Examples"]) -> "Examples":
        def cat(name):
            vals = [getattr(p, name) for p in parts]
            return None if vals[0] is None else np.concatenate(vals)

        return Examples(*(cat(n) for n in ("users", "event", "step", "agg", "n_events", "item", "label", "cutoff")))


def aggregate_names(event_types: list[str]) -> list[str]:
    kinds = list(event_types) + ["(other)"]
    return (["log_days_since_last_event", "log_days_since_first_event", "log_days_since_last_purchase",
             "has_purchase", "log_events", "log_purchases", "log_recent_purchases"]
            + [f"log_count_{k}" for k in kinds] + [f"log_recent_count_{k}" for k in kinds])


def build_examples(log: EventLog, cutoff: float, max_len: int, n_event_ids: int, recent_s: float,
                   horizon_s: float | None = None, lookback_s: float | None = None) -> Examples:
    """One example per user with at least one event in ``(cutoff - lookback, cutoff]``; labels when ``horizon_s``."""
    keep = log.t <= cutoff
    if lookback_s is not None:
        keep &= log.t > cutoff - lookback_s
    idx = np.flatnonzero(keep)
    L, K = int(max_len), int(n_event_ids) - 1  # K event kinds counted (ids 1..K)
    n_agg = 7 + 2 * K
    if len(idx) == 0:
        empty = Examples(np.zeros(0, np.int64), np.zeros((0, L), np.int32), np.zeros((0, L, N_STEP), np.float32),
                         np.zeros((0, n_agg), np.float32), np.zeros(0, np.int64),
                         None if log.item is None else np.zeros((0, L), np.int32),
                         None if horizon_s is None else np.zeros(0, np.float32), np.zeros(0))
        return empty
    u = log.user[idx]
    tt = log.t[idx]
    brk = np.flatnonzero(u[1:] != u[:-1]) + 1
    starts = np.concatenate([[0], brk])
    ends = np.concatenate([brk, [len(u)]])
    counts = ends - starts
    G = len(starts)
    g = np.repeat(np.arange(G), counts)  # example of each kept event
    from_end = np.repeat(ends, counts) - 1 - np.arange(len(u))  # 0 = the user's last event before the cutoff
    n_keep = np.minimum(counts, L)
    sel = from_end < L
    rows, cols = g[sel], (n_keep[g] - 1 - from_end)[sel]
    ev_all = log.event[idx]
    event = np.zeros((G, L), np.int32)
    event[rows, cols] = ev_all[sel]
    item = None
    if log.item is not None:
        item = np.zeros((G, L), np.int32)
        item[rows, cols] = log.item[idx][sel]
    prev = np.empty_like(tt)
    prev[1:] = tt[:-1]
    prev[starts] = tt[starts]  # a user's first event: no gap
    step = np.zeros((G, L, N_STEP), np.float32)
    step[rows, cols, 0] = np.log1p(np.maximum(tt - prev, 0.0) / DAY)[sel]
    step[rows, cols, 1] = np.log1p(np.maximum(cutoff - tt, 0.0) / DAY)[sel]

    # aggregates over the whole history before the cutoff (the recency / frequency view)
    recent = (cutoff - tt) <= recent_s
    pur = log.purchase[idx]
    last_t, first_t = tt[ends - 1], tt[starts]
    pi = np.flatnonzero(pur)
    last_p = np.full(G, np.nan)
    if len(pi):
        gp = g[pi]
        last_of_user = np.concatenate([gp[1:] != gp[:-1], [True]])
        last_p[gp[last_of_user]] = tt[pi[last_of_user]]
    has_p = np.isfinite(last_p)
    since_first = (cutoff - first_t) / DAY
    since_last_p = np.where(has_p, (cutoff - np.where(has_p, last_p, cutoff)) / DAY, since_first)
    by_kind = np.bincount(g * K + (ev_all - 1), minlength=G * K).reshape(G, K)
    by_kind_recent = np.bincount(g[recent] * K + (ev_all[recent] - 1), minlength=G * K).reshape(G, K)
    n_pur = np.bincount(g, weights=pur, minlength=G)
    n_pur_recent = np.bincount(g, weights=pur & recent, minlength=G)
    agg = np.column_stack([np.log1p((cutoff - last_t) / DAY), np.log1p(since_first), np.log1p(since_last_p),
                           has_p.astype(np.float64), np.log1p(counts), np.log1p(n_pur), np.log1p(n_pur_recent),
                           np.log1p(by_kind), np.log1p(by_kind_recent)]).astype(np.float32)
    users = u[starts]
    label = None
    if horizon_s is not None:
        window = log.purchase & (log.t > cutoff) & (log.t <= cutoff + horizon_s)
        label = np.isin(users, log.user[window]).astype(np.float32)
    return Examples(users, event, step, agg, counts.astype(np.int64), item, label, np.full(G, cutoff))


# -- the model -------------------------------------------------------------------------------------------------
@dataclass
class SequenceModel:
    """A trained next-purchase GRU as plain arrays: vocabularies, standardisation and weights."""

    config: dict  # max_len, units, hidden, horizon_days, recent_days, lookback_days, has_item, n_event_ids, ...
    event_types: list[str]  # id i (1-based) -> type; id len+1 = unknown
    item_ids: list[str] | None  # id i (2-based) -> item; id 1 = other
    weights: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)

    @property
    def n_event_ids(self) -> int:
        return len(self.event_types) + 2  # padding 0, types 1..n, unknown n+1

    # -- scoring (NumPy only) ----------------------------------------------------------------------------------
    def predict_proba(self, ex: Examples) -> np.ndarray:
        """P(purchase within the horizon) for each example: the GRU forward pass in NumPy, a block of users at a time."""
        out = np.empty(len(ex), np.float64)
        for s in range(0, len(ex), SCORE_CHUNK):
            out[s:s + SCORE_CHUNK] = self._forward(ex.take(np.arange(s, min(s + SCORE_CHUNK, len(ex)))))
        return out

    def _forward(self, ex: Examples) -> np.ndarray:
        W = self.weights
        units = int(self.config["units"])
        step = (ex.step - W["step_mean"]) / W["step_scale"]
        parts = [W["event_embedding"][ex.event], step]
        if self.config["has_item"]:
            parts.append(W["item_embedding"][ex.item])
        x = np.concatenate(parts, axis=2).astype(np.float32)
        mask = ex.event != 0
        bias = W["gru_bias"]
        xw = x @ W["gru_kernel"] + bias[0]  # (n, L, 3u): the input side of every gate, all steps at once
        U, b_rec = W["gru_recurrent_kernel"], bias[1]
        h = np.zeros((len(ex), units), np.float32)
        steps = int(mask.any(axis=0).nonzero()[0].max()) + 1 if mask.any() else 0  # right-padded
        for t in range(steps):
            hr = h @ U + b_rec
            xt = xw[:, t]
            z = _sigmoid(xt[:, :units] + hr[:, :units])
            r = _sigmoid(xt[:, units:2 * units] + hr[:, units:2 * units])
            hh = np.tanh(xt[:, 2 * units:] + r * hr[:, 2 * units:])
            h_new = z * h + (1.0 - z) * hh
            h = np.where(mask[:, t, None], h_new, h)
        a = h
        if self.config.get("aggregates", True):
            agg = (ex.agg - W["agg_mean"]) / W["agg_scale"]
            a = np.concatenate([h, agg.astype(np.float32)], axis=1)
        if "hidden_kernel" in W:
            a = np.maximum(a @ W["hidden_kernel"] + W["hidden_bias"], 0.0)
        logit = (a @ W["output_kernel"] + W["output_bias"])[:, 0].astype(np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -500, 500)))

    # -- storage ---------------------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"w_{k}": np.asarray(v) for k, v in self.weights.items()}
        arrays["event_types"] = np.asarray(self.event_types, dtype=str)
        if self.item_ids is not None:
            arrays["item_ids"] = np.asarray(self.item_ids, dtype=str)
        arrays["config"] = np.array(json.dumps({"format_version": FORMAT_VERSION, **self.config}))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict) -> "SequenceModel":
        config = json.loads(str(arrays["config"]))
        if config.pop("format_version", None) != FORMAT_VERSION:
            raise TrainingFailed("the stored sequence model has a format this version of warehouse-ml does not "
                                 "read. Retrain it with FROM ml_train(..., task := 'sequence')")
        weights = {k[2:]: np.asarray(v) for k, v in arrays.items() if k.startswith("w_")}
        items = [str(s) for s in arrays["item_ids"]] if "item_ids" in arrays else None
        return cls(config, [str(s) for s in arrays["event_types"]], items, weights)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# -- training --------------------------------------------------------------------------------------------------
def _model_inputs(ex: Examples, step_mean, step_scale, agg_mean, agg_scale, has_item: bool,
                  aggregates: bool = True) -> dict:
    step = ((ex.step - step_mean) / step_scale).astype(np.float32)
    step[ex.event == 0] = 0.0
    out = {"event": ex.event, "step": step, "mask": ex.event != 0}
    if aggregates:
        out["aggregates"] = ((ex.agg - agg_mean) / agg_scale).astype(np.float32)
    if has_item:
        out["item"] = ex.item
    return out


def build_keras(keras, config: dict, n_event_ids: int, n_item_ids: int, n_agg: int, mixed_precision: bool = False):
    """The Keras network; layer names match the NumPy forward pass's weights."""
    dtype = "mixed_float16" if mixed_precision else "float32"
    layers = keras.layers
    L = int(config["max_len"])
    ev = keras.Input((L,), dtype="int32", name="event")
    st = keras.Input((L, N_STEP), dtype="float32", name="step")
    mask = keras.Input((L,), dtype="bool", name="mask")
    inputs = [ev, st, mask]
    parts = [layers.Embedding(n_event_ids, int(config["event_dim"]), name="event_embedding", dtype=dtype)(ev), st]
    if config["has_item"]:
        it = keras.Input((L,), dtype="int32", name="item")
        inputs.append(it)
        parts.append(layers.Embedding(n_item_ids, int(config["item_dim"]), name="item_embedding", dtype=dtype)(it))
    x = layers.Concatenate(name="steps", dtype=dtype)(parts)
    h = layers.GRU(int(config["units"]), name="gru", dtype=dtype)(x, mask=mask)
    z = h
    if config.get("aggregates", True):
        agg = keras.Input((n_agg,), dtype="float32", name="aggregates")
        inputs.append(agg)
        z = layers.Concatenate(name="head", dtype=dtype)([h, agg])
    if int(config["hidden"]):
        z = layers.Dense(int(config["hidden"]), activation="relu", name="hidden", dtype=dtype)(z)
    out = layers.Dense(1, activation="sigmoid", name="output", dtype="float32")(z)
    return keras.Model(inputs, out, name="wml_next_purchase")


def _extract(model, config: dict) -> dict[str, np.ndarray]:
    def vals(name):
        return [np.asarray(v.numpy(), dtype=np.float32) for v in model.get_layer(name).weights]

    W = {"event_embedding": vals("event_embedding")[0]}
    if config["has_item"]:
        W["item_embedding"] = vals("item_embedding")[0]
    W["gru_kernel"], W["gru_recurrent_kernel"], W["gru_bias"] = vals("gru")
    if int(config["hidden"]):
        W["hidden_kernel"], W["hidden_bias"] = vals("hidden")
    W["output_kernel"], W["output_bias"] = vals("output")
    return W


def _scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = a.mean(axis=0)
    sd = a.std(axis=0)
    return mean.astype(np.float32), np.where(sd > 1e-6, sd, 1.0).astype(np.float32)


def fit_gru(train: Examples, p: dict, event_types: list[str], item_ids: list[str] | None,
            progress=None) -> tuple[SequenceModel, dict]:
    """Train the GRU on ``train`` (labels set); early stopping on a validation share of the users."""
    from .tf_runtime import import_tf, make_dataset, seed_everything

    tf, keras = import_tf("task := 'sequence'")
    seed = int(p["random_state"])
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    seed_everything(tf, keras, seed, deterministic=not on_gpu)
    has_item = item_ids is not None
    config = {k: p[k] for k in ("max_len", "units", "hidden", "event_dim", "item_dim", "horizon_days",
                                "recent_days", "lookback_days", "aggregates")}
    config["has_item"] = has_item
    n_event_ids = len(event_types) + 2
    n_item_ids = (len(item_ids) + 2) if has_item else 0

    # validation: a share of the users (all their windows), drawn with the seed
    users = np.unique(train.users)
    rng = np.random.default_rng(seed)
    n_val_users = int(round(len(users) * float(p["validation_fraction"])))
    val_users = rng.choice(users, n_val_users, replace=False) if 0 < n_val_users < len(users) else np.zeros(0, users.dtype)
    is_val = np.isin(train.users, val_users)
    if is_val.all() or (len(val_users) and len(np.unique(train.label[is_val])) < 2):
        is_val[:] = False  # too few users to hold some out: train on all, for the full number of epochs
    fit_ex, val_ex = train.take(np.flatnonzero(~is_val)), train.take(np.flatnonzero(is_val))
    valid_steps = fit_ex.step[fit_ex.event != 0]
    step_mean, step_scale = _scale(valid_steps) if len(valid_steps) else (np.zeros(N_STEP, np.float32), np.ones(N_STEP, np.float32))
    agg_mean, agg_scale = _scale(fit_ex.agg)
    norm = (step_mean, step_scale, agg_mean, agg_scale, has_item, bool(p["aggregates"]))
    batch = int(min(p["batch_size"], max(len(fit_ex), 1)))
    device = "/GPU:0" if on_gpu else "/CPU:0"
    t0 = time.perf_counter()
    with tf.device(device):
        model = build_keras(keras, config, n_event_ids, n_item_ids, fit_ex.agg.shape[1], mixed_precision=on_gpu)
        model.compile(optimizer=keras.optimizers.Adam(float(p["learning_rate"])), loss="binary_crossentropy",
                      jit_compile=False)
        train_ds = make_dataset(tf, _model_inputs(fit_ex, *norm), fit_ex.label, None, batch, True, seed)
        valid_ds = (make_dataset(tf, _model_inputs(val_ex, *norm), val_ex.label, None, batch, False, seed)
                    if len(val_ex) else None)
        callbacks = ([keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(p["patience"]),
                                                    restore_best_weights=True)] if valid_ds is not None else [])
        history = model.fit(train_ds, validation_data=valid_ds, epochs=int(p["epochs"]), callbacks=callbacks,
                            shuffle=False, verbose=0)
    seconds = time.perf_counter() - t0
    weights = _extract(model, config)
    weights.update(step_mean=step_mean, step_scale=step_scale, agg_mean=agg_mean, agg_scale=agg_scale)
    n_epochs = len(history.epoch)
    kept = f", early stopping kept epoch {int(np.argmin(history.history['val_loss'])) + 1}" if valid_ds is not None else ""
    note = (f"gru trained {n_epochs} epoch(s) on {len(fit_ex):,} sequences ({len(val_ex):,} held out for early "
            f"stopping) on {device.strip('/')} in {seconds:.1f} s{kept}; "
            f"{len(fit_ex) * n_epochs / max(seconds, 1e-9):,.0f} sequences/s")
    info = {"seconds": seconds, "epochs": n_epochs, "device": device.strip("/"), "keras_model": model,
            "loss": history.history["loss"]}
    return SequenceModel(config, list(event_types), None if item_ids is None else list(item_ids), weights, [note]), info


def keras_forward_check(sm: SequenceModel, keras_model, ex: Examples) -> np.ndarray:
    """Keras' own predictions on ``ex`` (for checking the NumPy forward pass)."""
    W = sm.weights
    inputs = _model_inputs(ex, W["step_mean"], W["step_scale"], W["agg_mean"], W["agg_scale"], sm.config["has_item"],
                           sm.config.get("aggregates", True))
    return np.asarray(keras_model(inputs, training=False), dtype=np.float64)[:, 0]


def fit_baseline(train: Examples):
    """Logistic regression on the aggregates alone (recency, frequency, counts by event type): no sequence."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.agg, train.label)


def classification_metrics(y: np.ndarray, p: np.ndarray, prefix: str = "") -> dict[str, float]:
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    out = {}
    if len(np.unique(y)) == 2:
        out[f"{prefix}roc_auc"] = float(roc_auc_score(y, p))
        out[f"{prefix}pr_auc"] = float(average_precision_score(y, p))
        out[f"{prefix}log_loss"] = float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))
    return out


# -- a synthetic event log with sequential structure (tests, examples) -------------------------------------------
def synthetic_events(n_users: int = 400, days: int = 150, seed: int = 0) -> dict[str, np.ndarray]:
    """Browsing sessions at similar rates (a view, and a cart in 35% of them); a cart is bought at once (15%),
    bought 1-6 days later when the user comes back (75%), or abandoned. So a user whose *latest* cart has no
    purchase after it is likely to buy within the week, which the order of events shows and counts of events
    blur. Columns: user_id, event_type, product_id, day (float days from 0), sorted by day."""
    rng = np.random.default_rng(seed)
    rate = np.exp(np.log(0.15) + 0.2 * rng.standard_normal(n_users))  # sessions a day
    su = np.repeat(np.arange(n_users), rng.poisson(rate * days))
    sd = rng.uniform(0, days, len(su))
    prod = rng.integers(1, 60, len(su))
    cart = rng.random(len(su)) < 0.35
    fate = rng.random(len(su))
    now_buy, later = cart & (fate < 0.15), cart & (fate >= 0.15) & (fate < 0.90)
    delay = rng.uniform(1, 6, len(su))
    user = np.concatenate([su, su[cart], su[now_buy], su[later]])
    day = np.concatenate([sd, sd[cart] + 0.01, sd[now_buy] + 0.02, sd[later] + delay[later]])
    kind = np.concatenate([np.zeros(len(su), int), np.ones(cart.sum(), int), np.full(now_buy.sum() + later.sum(), 2)])
    product = np.concatenate([prod, prod[cart], prod[now_buy], prod[later]])
    keep = day < days
    order = np.lexsort((kind[keep], day[keep]))
    return {"user_id": user[keep][order], "event_type": np.array(["view", "cart", "purchase"])[kind[keep][order]],
            "product_id": product[keep][order], "day": day[keep][order]}
