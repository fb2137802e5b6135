"""Deep tabular models with TensorFlow/Keras: ``algorithm := 'mlp'`` for classification and regression.

``KerasMLPClassifier`` and ``KerasMLPRegressor`` follow scikit-learn's conventions (``fit``, ``predict``,
``predict_proba``, ``classes_``, ``get_params``/``set_params``) so ``tasks.supervised`` fits, evaluates and
explains them like every other algorithm, over the same Featurizer matrix (float64, NaN for missing, category
codes in the categorical columns).

* Preprocessing is stored with the model as plain arrays (``TabularPrep``): median imputation with a missing
  indicator for each numeric column that had gaps, standardisation, and one shared embedding table for the
  category-code columns (each column gets its own id range; a missing or unseen category has its own id).
* Training input: the preprocessed float32/int32 NumPy arrays become tensors once; each epoch a tf.data
  pipeline shuffles row indices and gathers whole batches (the same vectorised path Keras uses for in-memory
  NumPy arrays): no pandas, no per-row Python.
* Early stopping on a validation split (best weights restored), class weights as per-row sample weights,
  seeds fixed and deterministic ops on the CPU, mixed precision only on a GPU. A GPU running out of memory
  retries with smaller batches, then on the CPU, with a warning.
* Scoring is a NumPy forward pass over the trained weights (no TensorFlow call per 2048-row UDF batch).
* Storage (format ``keras``): plain arrays, in ``deep_storage``; a stored MLP scores without TensorFlow.

TensorFlow is imported lazily, only to train (``tf_runtime``): importing this module does not import it.
"""
from __future__ import annotations

import copy
import logging
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ..errors import InvalidArgument, TrainingFailed
from ..progress import counter
from .tf_runtime import import_tf, make_dataset, one_blas_thread, seed_everything

MIN_BATCH = 32
FORWARD_CHUNK = 4096  # rows per block of the NumPy forward pass
TRANSFORM_CHUNK = 32768  # rows per block of the preprocessing

log = logging.getLogger("warehouse_ml")


# -- preprocessing -----------------------------------------------------------------------------------------
class TabularPrep:
    """Featurizer matrix -> (standardised float32 numeric block, int32 embedding ids), fitted on training rows."""

    ARRAYS = ("num_idx", "cat_idx", "median", "ind_idx", "mean", "scale", "cat_vocab", "cat_offset")

    def __init__(self, **arrays):
        for k in self.ARRAYS:
            setattr(self, k, arrays[k])

    @classmethod
    def fit(cls, X: np.ndarray, categorical: np.ndarray) -> "TabularPrep":
        categorical = np.asarray(categorical, dtype=bool)
        num_idx, cat_idx = np.flatnonzero(~categorical), np.flatnonzero(categorical)
        k = len(num_idx)
        median, mean, scale, with_gaps, gap_share = np.zeros(k), np.zeros(k), np.ones(k), [], []
        cols = np.ascontiguousarray(X[:, num_idx].T)  # one column per row: contiguous passes below
        for i in range(k):  # one vectorised pass per column
            col = cols[i]
            ok = np.isfinite(col)
            vals = col[ok] if not ok.all() else col
            if len(vals) < len(col):
                with_gaps.append(i)
                gap_share.append(1.0 - len(vals) / max(len(col), 1))
            if len(vals):  # an all-missing column imputes 0
                median[i] = np.median(vals)
                filled = np.where(ok, col, median[i]) if len(vals) < len(col) else col
                mean[i], scale[i] = filled.mean(), filled.std()
        p = np.asarray(gap_share)
        ind_idx = np.asarray(with_gaps, dtype=np.int64)
        mean = np.concatenate([mean, p])  # the missing indicators are standardised too
        scale = np.concatenate([scale, np.sqrt(p * (1 - p))])
        scale = np.where(scale > 1e-12, scale, 1.0)
        codes = X[:, cat_idx]
        top = np.where(np.isfinite(codes), codes, -1).max(axis=0) if len(X) else np.full(len(cat_idx), -1.0)
        cat_vocab = top.astype(np.int64) + 2  # codes 0..top, then one id for missing / unseen
        cat_offset = np.concatenate([[0], np.cumsum(cat_vocab)[:-1]]).astype(np.int64)
        return cls(num_idx=num_idx.astype(np.int64), cat_idx=cat_idx.astype(np.int64), median=median.astype(np.float64),
                   ind_idx=ind_idx.astype(np.int64), mean=mean.astype(np.float64), scale=scale.astype(np.float64),
                   cat_vocab=cat_vocab, cat_offset=cat_offset)

    @property
    def n_numeric(self) -> int:
        return len(self.num_idx) + len(self.ind_idx)

    @property
    def n_categorical(self) -> int:
        return len(self.cat_idx)

    @property
    def n_embeddings(self) -> int:
        return int(self.cat_vocab.sum())

    def transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float64)
        if len(X) > 2 * TRANSFORM_CHUNK:  # cache-sized blocks of rows
            parts = [self.transform(X[i:i + TRANSFORM_CHUNK]) for i in range(0, len(X), TRANSFORM_CHUNK)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        n, k = len(X), len(self.num_idx)
        Z = np.empty((n, self.n_numeric), dtype=np.float32)
        if k:
            xn = X[:, self.num_idx]
            miss = ~np.isfinite(xn)
            if miss.any():
                np.copyto(xn, np.broadcast_to(self.median, xn.shape), where=miss)
            xn -= self.mean[:k]
            xn /= self.scale[:k]
            Z[:, :k] = xn
            Z[:, k:] = (miss[:, self.ind_idx] - self.mean[k:]) / self.scale[k:]
        codes = X[:, self.cat_idx]
        unknown = self.cat_vocab - 1
        bad = ~np.isfinite(codes) | (codes < 0) | (codes >= unknown)
        ids = (np.where(bad, unknown, codes) + self.cat_offset).astype(np.int32)
        return Z, ids

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"prep_{k}": getattr(self, k) for k in self.ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "TabularPrep":
        return cls(**{k: np.asarray(arrays[f"prep_{k}"]) for k in cls.ARRAYS})


# -- the network -------------------------------------------------------------------------------------------
def embedding_dim_for(prep: TabularPrep, embedding_dim) -> int:
    if embedding_dim not in (None, "auto"):
        return int(embedding_dim)
    widest = int(prep.cat_vocab.max()) if prep.n_categorical else 1
    return int(min(16, max(2, round(1.6 * widest ** 0.56))))


def build_model(keras, prep: TabularPrep, n_outputs: int, output: str, hidden_units, dropout: float,
                embedding_dim: int, learning_rate: float, mixed_precision: bool = False, compile: bool = True):
    """The Keras MLP (compiled for training unless ``compile=False``): inputs ``numeric`` (float32) and/or
    ``categorical`` (int32 embedding ids)."""
    dtype = "mixed_float16" if mixed_precision else "float32"
    layers = keras.layers
    inputs, parts = [], []
    if prep.n_numeric:
        num = keras.Input((prep.n_numeric,), name="numeric", dtype="float32")
        inputs.append(num)
        parts.append(num)
    if prep.n_categorical:
        cat = keras.Input((prep.n_categorical,), name="categorical", dtype="int32")
        inputs.append(cat)
        emb = layers.Embedding(prep.n_embeddings, embedding_dim, name="embedding", dtype=dtype)(cat)
        parts.append(layers.Flatten(name="flatten", dtype=dtype)(emb))
    h = parts[0] if len(parts) == 1 else layers.Concatenate(name="concat", dtype=dtype)(parts)
    for i, units in enumerate(hidden_units):
        h = layers.Dense(int(units), activation="relu", name=f"hidden_{i}", dtype=dtype)(h)
        if dropout > 0:
            h = layers.Dropout(dropout, name=f"dropout_{i}", dtype=dtype)(h)
    act = {"sigmoid": "sigmoid", "softmax": "softmax", "linear": None}[output]
    out = layers.Dense(n_outputs, activation=act, name="output", dtype="float32")(h)  # float32 even when mixed
    model = keras.Model(inputs, out, name="wml_mlp")
    if not compile:
        return model
    loss = {"sigmoid": "binary_crossentropy", "softmax": "sparse_categorical_crossentropy", "linear": "mse"}[output]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, jit_compile=False)
    return model


def model_inputs(prep: TabularPrep, Z: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    if prep.n_numeric:
        out["numeric"] = Z
    if prep.n_categorical:
        out["categorical"] = ids
    return out


# -- the estimators ----------------------------------------------------------------------------------------
class _KerasMLP(BaseEstimator):
    _output = "linear"

    def set_params(self, **params):
        super().set_params(**params)
        self._check_params()
        return self

    def _check_params(self) -> None:
        def bad(name, problem, example):
            raise InvalidArgument("params", f"{name} {problem}", f"Use e.g. params := {{{name}: {example}}}")

        hu = self.hidden_units
        hu = [hu] if isinstance(hu, (int, np.integer)) and not isinstance(hu, bool) else hu
        if (not isinstance(hu, (list, tuple)) or not hu
                or not all(isinstance(u, (int, np.integer)) and not isinstance(u, bool) and 1 <= u <= 65536 for u in hu)):
            bad("hidden_units", f"must be a non-empty list of layer widths (1..65536), got {self.hidden_units!r}", "[128, 64]")
        for name, lo, hi, example in (("epochs", 1, 100_000, 30), ("patience", 1, 10_000, 4)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
                bad(name, f"must be a whole number in [{lo}, {hi}], got {v!r}", example)
        bs = self.batch_size
        if bs != "auto" and (not isinstance(bs, (int, np.integer)) or isinstance(bs, bool) or not 1 <= bs <= 1 << 20):
            bad("batch_size", f"must be 'auto' or a whole number of rows in [1, 1048576], got {bs!r}", 512)
        for name, ok, rule, example in (
                ("learning_rate", lambda v: 0 < v < 10, "in (0, 10)", 0.001),
                ("dropout", lambda v: 0 <= v < 1, "in [0, 1)", 0.1),
                ("validation_fraction", lambda v: 0 <= v <= 0.5, "in [0, 0.5] (0 turns early stopping off)", 0.1)):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool) or not ok(v):
                bad(name, f"must be a number {rule}, got {v!r}", example)
        ed = self.embedding_dim
        if ed not in (None, "auto") and (not isinstance(ed, (int, np.integer)) or isinstance(ed, bool) or not 1 <= ed <= 1024):
            bad("embedding_dim", f"must be 'auto' or a whole number in [1, 1024], got {ed!r}", 8)
        if not isinstance(self.random_state, (int, np.integer)) or isinstance(self.random_state, bool):
            bad("random_state", f"must be a whole number, got {self.random_state!r}", 0)

    # -- training --------------------------------------------------------------------------------------------
    def _targets(self, y):
        raise NotImplementedError

    def fit(self, X, y):
        self._check_params()
        X = np.asarray(X, dtype=np.float64)
        tf, keras = import_tf()
        categorical = (np.zeros(X.shape[1], dtype=bool) if self.categorical is None
                       else np.asarray(self.categorical, dtype=bool))
        if len(categorical) != X.shape[1]:
            raise InvalidArgument("params", f"categorical has {len(categorical)} entries for {X.shape[1]} features",
                                  "Leave categorical out: it is set from the relation's text columns")
        t, self.n_outputs_, w = self._targets(y)
        self.n_features_in_ = X.shape[1]
        self.notes_ = []
        self.prep_ = TabularPrep.fit(X, categorical)
        Z, ids = self.prep_.transform(X)
        n = len(t)
        rng = np.random.default_rng(self.random_state)
        n_val = int(round(n * self.validation_fraction)) if self.validation_fraction > 0 and n >= 20 else 0
        perm = rng.permutation(n)
        val, tr = perm[:n_val], perm[n_val:]
        # auto: about 100 steps per epoch, between 32 and 2048 rows per batch
        bs = self.batch_size if self.batch_size != "auto" else int(np.clip(2 ** round(np.log2(max(len(tr), 1) / 100)), 32, 2048))
        bs = int(min(bs, max(len(tr), 1)))
        if not n_val:
            tr = slice(None)  # train on every row as it is (no copy): the dataset shuffles
        # where to train: the GPU (if any) with the batch size, then half and a quarter of it when it runs out of
        # memory, and last the CPU
        plan = []
        if tf.config.list_physical_devices("GPU"):
            for b in (bs, bs // 2, bs // 4):
                if b >= min(bs, MIN_BATCH) and ("/GPU:0", b, True) not in plan:
                    plan.append(("/GPU:0", b, True))
        plan.append(("/CPU:0", bs, False))
        inputs = model_inputs(self.prep_, Z, ids)
        train_in = {k: v[tr] for k, v in inputs.items()}
        val_in = {k: v[val] for k, v in inputs.items()}
        t_w = (t[tr], None if w is None else w[tr])
        v_w = (t[val], None if w is None else w[val])
        t0 = time.perf_counter()
        for attempt, (device, batch, on_gpu) in enumerate(plan):
            seed_everything(tf, keras, int(self.random_state), deterministic=not on_gpu)
            # the input pipeline stays on the CPU; the model (and its steps) on the device
            train = make_dataset(tf, train_in, *t_w, batch, True, int(self.random_state))
            valid = make_dataset(tf, val_in, *v_w, batch, False, 0) if n_val else None
            callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(self.patience),
                                                       restore_best_weights=True)] if n_val else []
            try:
                with tf.device(device), counter("mlp epochs", int(self.epochs), unit="epoch") as tick:
                    model = self._build(keras, mixed_precision=on_gpu)
                    callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: tick()))
                    history = model.fit(train, validation_data=valid, epochs=int(self.epochs), callbacks=callbacks,
                                        shuffle=False, verbose=int(self.verbose))  # the dataset shuffles
                break
            except tf.errors.ResourceExhaustedError as e:
                if attempt == len(plan) - 1:
                    raise TrainingFailed(f"the MLP ran out of memory on {device.strip('/')} with batch_size {batch} "
                                         f"({e.message[:200]}). Use a smaller network or batch, e.g. "
                                         "params := {batch_size: 128, hidden_units: [64, 32]}, or fewer rows") from None
                nxt = plan[attempt + 1]
                msg = (f"the GPU ran out of memory with batch_size {batch}: retrying with batch_size {nxt[1]}"
                       + ("" if nxt[2] else " on the CPU"))
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
                log.warning(msg)
                self.notes_.append(msg)
        self.train_seconds_ = time.perf_counter() - t0
        self.device_ = device.strip("/")
        self.batch_size_ = batch
        self.n_epochs_ = len(history.epoch)
        self.samples_seen_ = (n - n_val) * self.n_epochs_
        self.model_ = model
        self._weights = None
        stopped = f", early stopping kept epoch {int(np.argmin(history.history['val_loss'])) + 1}" if n_val else ""
        self.notes_.append(f"mlp trained {self.n_epochs_} epoch(s) on {self.device_} with batch_size {batch}{stopped}; "
                           f"{self.samples_seen_ / max(self.train_seconds_, 1e-9):,.0f} samples/s")
        return self

    def warm_started(self, X, y, epochs: int = 5) -> "_KerasMLP":
        """A copy trained further from these weights on new rows (continual learning), keeping the preprocessing,
        classes and label scaling of the first fit so that the stored version's inputs and outputs keep their
        meaning. The copy is what changes: this estimator (perhaps a cached active version) stays as it was."""
        tf, keras = import_tf()
        t, w = self._known_targets(np.asarray(y))
        Z, ids = self.prep_.transform(np.asarray(X, dtype=np.float64))
        seed_everything(tf, keras, int(self.random_state), deterministic=True)
        model = self._build(keras)
        set_weights(model, self._weights if self.model_ is None else extract_weights(self.model_))
        batch = int(min(self.batch_size_ or 256, max(len(t), 1)))
        model.fit(make_dataset(tf, model_inputs(self.prep_, Z, ids), t, w, batch, True, int(self.random_state)),
                  epochs=int(epochs), shuffle=False, verbose=0)
        new = copy.copy(self)
        new.model_, new._weights = model, None
        new.n_epochs_ = int(self.n_epochs_) + int(epochs)
        new.notes_ = [f"warm start: {epochs} more epoch(s) on {len(t):,} new rows from the active version's weights"]
        return new

    def _known_targets(self, y):
        raise NotImplementedError

    def _build(self, keras, mixed_precision: bool = False, compile: bool = True):
        return build_model(keras, self.prep_, self.n_outputs_, self._output, self._hidden(), float(self.dropout),
                           embedding_dim_for(self.prep_, self.embedding_dim), float(self.learning_rate),
                           mixed_precision=mixed_precision, compile=compile)

    def _hidden(self) -> list[int]:
        hu = self.hidden_units
        return [int(hu)] if isinstance(hu, (int, np.integer)) else [int(u) for u in hu]

    # -- scoring -------------------------------------------------------------------------------------------
    def _forward(self, X) -> np.ndarray:
        """The network's output for a Featurizer matrix: a NumPy forward pass over the trained weights, on one
        BLAS thread (on DuckDB's 2048-row batches, threads cost more than they give: 10x slower on 2 busy cores)."""
        if getattr(self, "_weights", None) is None:
            self._weights = extract_weights(self.model_)
        X = np.asarray(X, dtype=np.float64)
        out = np.empty((len(X), self._weights["output"][0].shape[1]), dtype=np.float32)
        with one_blas_thread():
            for start in range(0, len(X), FORWARD_CHUNK):  # cache-sized blocks of rows
                out[start:start + FORWARD_CHUNK] = self._forward_block(X[start:start + FORWARD_CHUNK])
        return out

    def _forward_block(self, X) -> np.ndarray:
        Wt = self._weights
        Z, ids = self.prep_.transform(X)
        parts = []
        if self.prep_.n_numeric:
            parts.append(Z)
        if self.prep_.n_categorical:
            parts.append(Wt["embedding"][ids].reshape(len(ids), -1))
        h = parts[0] if len(parts) == 1 else np.hstack(parts)
        for W, b in Wt["hidden"]:
            h = h @ W
            h += b
            np.maximum(h, 0.0, out=h)
        W, b = Wt["output"]
        h = h @ W
        h += b
        return h

    def __getstate__(self):
        state = self.__dict__.copy()
        if state.get("model_") is not None:
            state["_weights"] = None  # derived from the Keras model again when needed
        return state


def _keep_params(est: _KerasMLP, arguments: dict) -> None:
    """scikit-learn's convention: ``__init__`` keeps each argument, unchanged, under its own name."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


class KerasMLPClassifier(ClassifierMixin, _KerasMLP):
    """A Keras multilayer perceptron for class labels, with the scikit-learn estimator interface."""

    def __init__(self, hidden_units=(128, 64), epochs=30, batch_size="auto", learning_rate=1e-3, dropout=0.1,
                 validation_fraction=0.1, patience=4, embedding_dim="auto", class_weight=None, categorical=None,
                 random_state=0, verbose=0):
        _keep_params(self, locals())

    def _check_params(self) -> None:
        super()._check_params()
        cw = self.class_weight
        if cw not in (None, "balanced") and not isinstance(cw, dict):
            raise InvalidArgument("params", f"class_weight must be 'balanced', 'none' or a map of class -> weight, got {cw!r}",
                                  "Use e.g. params := {class_weight: 'balanced'}")

    def _targets(self, y):
        self.classes_, t = np.unique(np.asarray(y), return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise TrainingFailed(f"the label has a single class ({self.classes_[0]!r}); a classifier needs at least two")
        self._output = "sigmoid" if k == 2 else "softmax"
        w = None
        counts = np.bincount(t, minlength=k)
        if self.class_weight == "balanced":
            w = (len(t) / (k * counts))[t]
        elif isinstance(self.class_weight, dict):
            by_class = {str(c): float(v) for c, v in self.class_weight.items()}
            w = np.array([by_class.get(str(c), 1.0) for c in self.classes_])[t]
        t = t.astype(np.float32 if k == 2 else np.int32)
        return t, (1 if k == 2 else k), None if w is None else w.astype(np.float32)

    def _known_targets(self, y):
        """Targets of new rows on the classes of the first fit (a class it never saw cannot be learnt in place)."""
        position = {str(c): i for i, c in enumerate(self.classes_)}
        unknown = sorted({str(v) for v in y} - set(position))
        if unknown:
            raise ValueError(f"the new rows hold classes {unknown} the model was not trained on")
        t = np.array([position[str(v)] for v in y], dtype=np.int64)
        w = None
        if self.class_weight == "balanced":
            counts = np.bincount(t, minlength=len(self.classes_))
            w = (len(t) / (len(self.classes_) * np.maximum(counts, 1)))[t].astype(np.float32)
        return t.astype(np.float32 if len(self.classes_) == 2 else np.int32), w

    def predict_proba(self, X) -> np.ndarray:
        z = self._forward(X).astype(np.float64)
        if len(self.classes_) == 2:
            p = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
            return np.column_stack([1.0 - p, p])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class KerasMLPRegressor(RegressorMixin, _KerasMLP):
    """A Keras multilayer perceptron for a numeric label (trained on the standardised label)."""

    def __init__(self, hidden_units=(128, 64), epochs=30, batch_size="auto", learning_rate=1e-3, dropout=0.1,
                 validation_fraction=0.1, patience=4, embedding_dim="auto", categorical=None, random_state=0, verbose=0):
        _keep_params(self, locals())

    def _targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        self.y_mean_ = float(y.mean())
        sd = float(y.std())
        self.y_scale_ = sd if sd > 1e-12 else 1.0
        return ((y - self.y_mean_) / self.y_scale_).astype(np.float32), 1, None

    def _known_targets(self, y):
        return ((np.asarray(y, dtype=np.float64) - self.y_mean_) / self.y_scale_).astype(np.float32), None

    def predict(self, X) -> np.ndarray:
        return self._forward(X).astype(np.float64)[:, 0] * self.y_scale_ + self.y_mean_


def make_mlp(task: str, categorical: np.ndarray, class_weight=None) -> _KerasMLP:
    """The estimator ``estimators.make_estimator`` returns for ``algorithm := 'mlp'``; checks TensorFlow first."""
    import_tf()
    cats = np.asarray(categorical, dtype=bool)
    if task == "classification":
        return KerasMLPClassifier(class_weight=class_weight, categorical=cats)
    return KerasMLPRegressor(categorical=cats)


def layer_values(layer) -> list[np.ndarray]:
    return [np.asarray(v.numpy()) for v in layer.weights]  # (get_weights warns under NumPy 2)


def extract_weights(model) -> dict:
    out = {"hidden": []}
    i = 0
    while True:
        try:
            layer = model.get_layer(f"hidden_{i}")
        except ValueError:
            break
        W, b = layer_values(layer)
        out["hidden"].append((W.astype(np.float32), b.astype(np.float32)))
        i += 1
    W, b = layer_values(model.get_layer("output"))
    out["output"] = (W.astype(np.float32), b.astype(np.float32))
    try:
        out["embedding"] = layer_values(model.get_layer("embedding"))[0].astype(np.float32)
    except ValueError:
        pass
    return out


def set_weights(model, weights: dict) -> None:
    """Load the forward pass's weights (a stored version) into a freshly built Keras model, layer by name."""
    for i, (W, b) in enumerate(weights["hidden"]):
        model.get_layer(f"hidden_{i}").set_weights([W, b])
    model.get_layer("output").set_weights(list(weights["output"]))
    if "embedding" in weights:
        model.get_layer("embedding").set_weights([weights["embedding"]])


