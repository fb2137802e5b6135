"""Storing a trained MLP (``deep``) as plain arrays: an ``.npz`` (loaded with ``allow_pickle=False``) of the trained
weights, the preprocessing arrays and a JSON config. Loading reads plain arrays (nothing from the table can name
code to run) and scoring is the NumPy forward pass, so a stored MLP scores without TensorFlow installed."""
from __future__ import annotations

import io
import json

import numpy as np

from ..errors import UnsafeModel
from .deep import KerasMLPClassifier, KerasMLPRegressor, TabularPrep, _KerasMLP, extract_weights

FORMAT_VERSION = 2  # 1 held Keras' own .keras zip, which needed TensorFlow to load


def _weight_arrays(weights: dict) -> dict[str, np.ndarray]:
    arrays = {"output_w": weights["output"][0], "output_b": weights["output"][1]}
    for i, (W, b) in enumerate(weights["hidden"]):
        arrays[f"hidden_w_{i}"], arrays[f"hidden_b_{i}"] = W, b
    if "embedding" in weights:
        arrays["embedding"] = weights["embedding"]
    return arrays


def _weights_from_arrays(arrays: dict, prep: TabularPrep) -> dict:
    """The forward pass's weights from an artifact, refused unless their shapes chain into one network."""
    n_hidden = sum(1 for k in arrays if k.startswith("hidden_w_"))
    hidden = [(arrays[f"hidden_w_{i}"].astype(np.float32), arrays[f"hidden_b_{i}"].astype(np.float32))
              for i in range(n_hidden)]
    weights = {"hidden": hidden, "output": (arrays["output_w"].astype(np.float32), arrays["output_b"].astype(np.float32))}
    width = prep.n_numeric
    if prep.n_categorical:
        weights["embedding"] = arrays["embedding"].astype(np.float32)
        width += prep.n_categorical * weights["embedding"].shape[1]
    for W, b in hidden + [weights["output"]]:
        if W.ndim != 2 or W.shape[0] != width or b.shape != (W.shape[1],):
            raise UnsafeModel("the stored MLP's weights do not fit together. Retrain the model")
        width = W.shape[1]
    return weights


def dumps_keras(est: _KerasMLP) -> bytes:
    """The artifact of a fitted MLP: an npz (no pickles) of the trained weights, the preprocessing arrays and a
    JSON config: all the NumPy forward pass needs, so loading and scoring never import TensorFlow."""
    if getattr(est, "_weights", None) is None:
        est._weights = extract_weights(est.model_)
    params = {k: (v.tolist() if isinstance(v, np.ndarray) else list(v) if isinstance(v, tuple) else v)
              for k, v in est.get_params(deep=False).items()}
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = {str(k): float(v) for k, v in params["class_weight"].items()}
    config = {"format_version": FORMAT_VERSION, "kind": "classifier" if isinstance(est, KerasMLPClassifier) else "regressor",
              "params": params, "n_features_in": int(est.n_features_in_), "n_epochs": int(est.n_epochs_),
              "device": est.device_, "batch_size": int(est.batch_size_)}
    arrays = {"config": np.array(json.dumps(config)), **est.prep_.to_arrays(), **_weight_arrays(est._weights)}
    if isinstance(est, KerasMLPClassifier):
        classes = est.classes_
        arrays["classes"] = classes.astype(str) if classes.dtype == object else classes
    else:
        arrays["y_stats"] = np.array([est.y_mean_, est.y_scale_], dtype=np.float64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def loads_keras(data: bytes) -> _KerasMLP:
    """Load a ``keras`` artifact: plain arrays (``allow_pickle=False``), scored by the NumPy forward pass."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(str(arrays["config"]))
    if config.get("format_version") != FORMAT_VERSION:
        raise UnsafeModel(f"this MLP was stored in artifact format {config.get('format_version')} by an earlier "
                          "warehouse-ml (it needed TensorFlow to load). Retrain the model")
    cls = KerasMLPClassifier if config["kind"] == "classifier" else KerasMLPRegressor
    params = dict(config["params"])
    if params.get("categorical") is not None:
        params["categorical"] = np.asarray(params["categorical"], dtype=bool)
    est = cls(**params)
    est.prep_ = TabularPrep.from_arrays(arrays)
    est.model_ = None  # the Keras model exists only in the training process; its weights are here
    est._weights = _weights_from_arrays(arrays, est.prep_)
    est.n_features_in_ = config["n_features_in"]
    est.n_outputs_ = int(est._weights["output"][0].shape[1])
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
