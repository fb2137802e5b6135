"""TensorFlow, imported lazily (it takes seconds), and the tf.data input pipeline every network here trains on.

``import_tf`` gives ``(tensorflow, keras)`` or a MissingDependency naming the install command; nothing imports
TensorFlow at module level. ``make_dataset`` feeds in-memory arrays to Keras the vectorised way (index batches
gathered from tensors): the tabular MLP (``deep``), the two-tower recommender, the sequence GRU and the
forecasting network share it.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile

import numpy as np

from ..errors import MissingDependency

INSTALL_HINT = "pip install tensorflow-cpu  (or: pip install tensorflow, for a GPU)"

_tf_state: dict = {}


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
        with _native_stderr_filtered():
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


# what TensorFlow's native code writes to stderr on import whatever TF_CPP_MIN_LOG_LEVEL says (absl logs before
# its logging is set up): informational lines, kept out of shells, servers and reports
_IMPORT_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} |To enable the following "
                           r"instructions|oneDNN custom operations)")


@contextlib.contextmanager
def _native_stderr_filtered():
    """Route file descriptor 2 to a temporary file while TensorFlow imports, then pass on what is not noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreter): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines()
                    if line.strip() and not _IMPORT_NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def device_name() -> str:
    """The device deep training uses: 'GPU:0' when TensorFlow sees a GPU, else 'CPU'."""
    tf, _ = import_tf("ml_device()")
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU"


def seed_everything(tf, keras, seed: int, deterministic: bool) -> None:
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow seeds
    if deterministic and not _tf_state.get("deterministic"):
        tf.config.experimental.enable_op_determinism()
        _tf_state["deterministic"] = True


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


def one_blas_thread():
    """A context that limits BLAS to one thread (scoring small batches: threads cost more than they give)."""
    if "blas" not in _tf_state:
        from threadpoolctl import ThreadpoolController

        _tf_state["blas"] = ThreadpoolController()  # inspecting the loaded libraries once; limiting is then cheap
    return _tf_state["blas"].limit(limits=1, user_api="blas")
