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
* Storage (format ``keras``): an ``.npz`` (loaded with ``allow_pickle=False``) holding the model in Keras' own
  ``.keras`` zip, the preprocessing arrays and a JSON config. The Keras config is checked against an allowlist
  of layer classes before ``keras.saving.load_model(..., safe_mode=True)`` reads it, so nothing from the table
  can name code to run.

TensorFlow is imported lazily (it takes seconds): importing this module does not import it.
"""
from __future__ import annotations

import copy
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
import warnings
import zipfile

import logging

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ..errors import InvalidArgument, MissingDependency, TrainingFailed, UnsafeModel

INSTALL_HINT = "pip install tensorflow-cpu  (or: pip install tensorflow, for a GPU)"
FORMAT_VERSION = 1
MIN_BATCH = 32
FORWARD_CHUNK = 4096  # rows per block of the NumPy forward pass
TRANSFORM_CHUNK = 32768  # rows per block of the preprocessing

_tf_state: dict = {}
log = logging.getLogger("warehouse_ml")


# -- TensorFlow, lazily ------------------------------------------------------------------------------------
def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported, without importing it (cheap: used by ``auto``)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def import_tf(feature: str = "algorithm := 'mlp'"):
    """``(tensorflow, keras)``, imported on first use; a clear MissingDependency when that fails."""
    if "tf" in _tf_state:
        return _tf_state["tf"], _tf_state["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of SQL sessions
    try:
        import tensorflow as tf
        import keras
    except Exception as e:  # missing, or installed but failing to import (wrong wheel, broken install)
        why = "is not installed" if isinstance(e, ImportError) and "No module named" in str(e) else f"failed to import ({type(e).__name__}: {e})"
        raise MissingDependency("TensorFlow", feature, INSTALL_HINT + f". TensorFlow {why}; the classical "
                                "algorithms (logistic, gbm, random_forest, ...) work without it") from None
    if int(keras.__version__.split(".")[0]) < 3:
        raise MissingDependency("TensorFlow >= 2.16 (Keras 3)", feature, "pip install -U tensorflow-cpu")
    for gpu in tf.config.list_physical_devices("GPU"):
        try:  # take GPU memory as needed rather than all of it up front
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):
            pass  # already initialised
    _tf_state.update(tf=tf, keras=keras)
    return tf, keras


def device_name() -> str:
    """The device deep training uses: 'GPU:0' when TensorFlow sees a GPU, else 'CPU'."""
    tf, _ = import_tf("ml_device()")
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU"


def _seed_everything(tf, keras, seed: int, deterministic: bool) -> None:
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow seeds
    if deterministic and not _tf_state.get("deterministic"):
        tf.config.experimental.enable_op_determinism()
        _tf_state["deterministic"] = True


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


def make_dataset(tf, inputs: dict, y: np.ndarray, w: np.ndarray | None, batch_size: int, shuffle: bool, seed: int):
    """A tf.data pipeline over in-memory arrays, vectorised like Keras' own path for NumPy input: each epoch
    one permutation of the row indices (seeded, different every epoch), cut into whole batches with
    ``from_tensor_slices``, and each batch gathered from the tensors in one op, prefetched while the model trains."""
    n = len(y)
    data = ({k: tf.convert_to_tensor(v) for k, v in inputs.items()}, tf.convert_to_tensor(y))
    if w is not None:
        data = data + (tf.convert_to_tensor(w),)
    full = n // batch_size
    rest = n - full * batch_size
    plain = tf.autograph.experimental.do_not_convert  # TF ops only: no AutoGraph (nor source inspection) needed

    @plain
    def permutation(s):
        return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                        seed=tf.stack([s, tf.constant(seed, tf.int64)]))

    if shuffle:
        perms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1).map(permutation)
    else:
        perms = tf.data.Dataset.from_tensors(tf.range(n, dtype=tf.int64))

    @plain
    def batches(idx):
        out = tf.data.Dataset.from_tensor_slices(tf.reshape(idx[: full * batch_size], [full, batch_size]))
        return out.concatenate(tf.data.Dataset.from_tensors(idx[full * batch_size:])) if rest else out

    @plain
    def gather(i, tensors):
        return tf.nest.map_structure(lambda t: tf.gather(t, i, axis=0), tensors)

    # the tensors travel as a dataset element (not captured by the functions), so nothing large is serialised
    ds = tf.data.Dataset.zip((perms.prefetch(1).flat_map(batches), tf.data.Dataset.from_tensors(data).repeat()))
    ds = ds.map(gather)  # one gather per batch is cheap; a parallel map adds nothing here (and logs a TF 2.21 warning)
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    ds = ds.apply(tf.data.experimental.assert_cardinality(full + (1 if rest else 0)))  # Keras knows the epoch length
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


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
            _seed_everything(tf, keras, int(self.random_state), deterministic=not on_gpu)
            # the input pipeline stays on the CPU; the model (and its steps) on the device
            train = make_dataset(tf, train_in, *t_w, batch, True, int(self.random_state))
            valid = make_dataset(tf, val_in, *v_w, batch, False, 0) if n_val else None
            callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(self.patience),
                                                       restore_best_weights=True)] if n_val else []
            try:
                with tf.device(device):
                    model = self._build(keras, mixed_precision=on_gpu)
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
        _seed_everything(tf, keras, int(self.random_state), deterministic=True)
        model = self._build(keras)
        model.set_weights([np.asarray(v) for v in self.model_.get_weights()])
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
            self._weights = _extract_weights(self.model_)
        X = np.asarray(X, dtype=np.float64)
        out = np.empty((len(X), self._weights["output"][0].shape[1]), dtype=np.float32)
        with _one_blas_thread():
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
        state["_weights"] = None
        return state


class KerasMLPClassifier(ClassifierMixin, _KerasMLP):
    """A Keras multilayer perceptron for class labels, with the scikit-learn estimator interface."""

    def __init__(self, hidden_units=(128, 64), epochs=30, batch_size="auto", learning_rate=1e-3, dropout=0.1,
                 validation_fraction=0.1, patience=4, embedding_dim="auto", class_weight=None, categorical=None,
                 random_state=0, verbose=0):
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.embedding_dim = embedding_dim
        self.class_weight = class_weight
        self.categorical = categorical
        self.random_state = random_state
        self.verbose = verbose

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
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.embedding_dim = embedding_dim
        self.categorical = categorical
        self.random_state = random_state
        self.verbose = verbose

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
    """The estimator ``supervised.make_estimator`` returns for ``algorithm := 'mlp'``; checks TensorFlow first."""
    import_tf()
    cats = np.asarray(categorical, dtype=bool)
    if task == "classification":
        return KerasMLPClassifier(class_weight=class_weight, categorical=cats)
    return KerasMLPRegressor(categorical=cats)


def _one_blas_thread():
    if "blas" not in _tf_state:
        from threadpoolctl import ThreadpoolController

        _tf_state["blas"] = ThreadpoolController()  # inspecting the loaded libraries once; limiting is then cheap
    return _tf_state["blas"].limit(limits=1, user_api="blas")


def _values(layer) -> list[np.ndarray]:
    return [np.asarray(v.numpy()) for v in layer.weights]  # (get_weights warns under NumPy 2)


def _extract_weights(model) -> dict:
    out = {"hidden": []}
    i = 0
    while True:
        try:
            layer = model.get_layer(f"hidden_{i}")
        except ValueError:
            break
        W, b = _values(layer)
        out["hidden"].append((W.astype(np.float32), b.astype(np.float32)))
        i += 1
    W, b = _values(model.get_layer("output"))
    out["output"] = (W.astype(np.float32), b.astype(np.float32))
    try:
        out["embedding"] = _values(model.get_layer("embedding"))[0].astype(np.float32)
    except ValueError:
        pass
    return out


# -- storage -----------------------------------------------------------------------------------------------
# The only Keras classes an MLP artifact may name: anything else (Lambda layers, custom objects, functions)
# is refused before Keras reads the file.
ALLOWED_KERAS_CLASSES = {
    "Functional", "InputLayer", "Dense", "Dropout", "Embedding", "Flatten", "Concatenate",
    "DTypePolicy", "GlorotUniform", "Zeros", "RandomUniform", "__keras_tensor__",
}
_ALLOWED_KERAS_FILES = {"config.json", "metadata.json", "model.weights.h5"}


def dumps_keras(est: _KerasMLP) -> bytes:
    """The artifact of a fitted MLP: an npz with the ``.keras`` zip, the preprocessing arrays and a JSON config."""
    _, keras = import_tf()
    inference = est._build(keras, compile=False)  # float32 and uncompiled: no optimizer in the artifact
    inference.set_weights([np.asarray(v.numpy(), dtype=np.float32) for v in est.model_.weights])
    with tempfile.TemporaryDirectory(prefix="wml_keras_") as d:
        path = os.path.join(d, "model.keras")
        inference.save(path)
        with open(path, "rb") as fh:
            blob = fh.read()
    params = {k: (v.tolist() if isinstance(v, np.ndarray) else list(v) if isinstance(v, tuple) else v)
              for k, v in est.get_params(deep=False).items()}
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = {str(k): float(v) for k, v in params["class_weight"].items()}
    config = {"format_version": FORMAT_VERSION, "kind": "classifier" if isinstance(est, KerasMLPClassifier) else "regressor",
              "params": params, "n_features_in": int(est.n_features_in_), "n_epochs": int(est.n_epochs_),
              "device": est.device_, "batch_size": int(est.batch_size_)}
    arrays = {"keras_model": np.frombuffer(blob, dtype=np.uint8), "config": np.array(json.dumps(config)),
              **est.prep_.to_arrays()}
    if isinstance(est, KerasMLPClassifier):
        classes = est.classes_
        arrays["classes"] = classes.astype(str) if classes.dtype == object else classes
    else:
        arrays["y_stats"] = np.array([est.y_mean_, est.y_scale_], dtype=np.float64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def check_keras_archive(blob: bytes) -> None:
    """Refuse a ``.keras`` zip holding anything but the files and layer classes our MLP writes."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            names = set(z.namelist())
            extra = names - _ALLOWED_KERAS_FILES
            if extra or "config.json" not in names:
                raise UnsafeModel(f"the stored Keras model holds unexpected files {sorted(extra)}. "
                                  "Retrain it with warehouse-ml rather than writing artifacts by hand.")
            config = json.loads(z.read("config.json"))
    except (zipfile.BadZipFile, ValueError) as e:
        raise UnsafeModel(f"the stored Keras model is not a valid .keras archive ({e}). Retrain the model") from None
    refused = set()

    def walk(node):
        if isinstance(node, dict):
            cls = node.get("class_name")
            if isinstance(cls, str):
                module = node.get("module")
                if cls not in ALLOWED_KERAS_CLASSES or (module is not None and not str(module).startswith("keras")) \
                        or node.get("registered_name") not in (None, cls):
                    refused.add(f"{module}.{cls}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    if refused:
        raise UnsafeModel(f"the stored Keras model names classes that are not allowed to load: {sorted(refused)}. "
                          "Retrain it with warehouse-ml rather than writing artifacts by hand.")


def loads_keras(data: bytes) -> _KerasMLP:
    """Load a ``keras`` artifact: npz without pickles, allowlisted Keras config, ``safe_mode=True``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(str(arrays["config"]))
    if config.get("format_version") != FORMAT_VERSION:
        raise UnsafeModel(f"keras artifact format {config.get('format_version')} is not supported by this version "
                          "of warehouse-ml. Retrain the model")
    blob = arrays["keras_model"].tobytes()
    check_keras_archive(blob)
    _, keras = import_tf("loading a model trained with algorithm := 'mlp'")
    with tempfile.TemporaryDirectory(prefix="wml_keras_") as d:
        path = os.path.join(d, "model.keras")
        with open(path, "wb") as fh:
            fh.write(blob)
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    cls = KerasMLPClassifier if config["kind"] == "classifier" else KerasMLPRegressor
    params = dict(config["params"])
    if params.get("categorical") is not None:
        params["categorical"] = np.asarray(params["categorical"], dtype=bool)
    est = cls(**params)
    est.prep_ = TabularPrep.from_arrays(arrays)
    est.model_ = model
    est._weights = None
    est.n_features_in_ = config["n_features_in"]
    est.n_outputs_ = int(model.get_layer("output").units)
    est.n_epochs_ = config["n_epochs"]
    est.device_ = config.get("device", "CPU")
    est.batch_size_ = config.get("batch_size")
    est.notes_ = []
    if cls is KerasMLPClassifier:
        est.classes_ = arrays["classes"]
        est._output = "sigmoid" if len(est.classes_) == 2 else "softmax"
    else:
        est.y_mean_, est.y_scale_ = (float(v) for v in arrays["y_stats"])
    return est
