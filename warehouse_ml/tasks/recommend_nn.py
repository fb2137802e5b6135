"""The two-tower recommender behind ``method := 'two_tower'`` (recommend_items, evaluate_recommender, ml_train).

A user tower and an item tower (each: an id embedding, a linear projection, L2-normalised; ``hidden := n`` in
params adds a ReLU layer of n units before the projection, which did not help on the synthetic baskets) are
trained from the interaction matrix with **in-batch negatives**: for a batch of (user, item) pairs the score
matrix ``U V^T / temperature`` is a softmax over the batch's items for each user, whose target is the user's own
item (Yi et al., "Sampling-bias-corrected neural modeling for large corpus item recommendations", 2019). Two
corrections from that paper: ``log q(item)`` (the item's share of the pairs) is subtracted from its logits, so
popular items are not over-penalised for appearing as negatives more often; and a batch's duplicates of the
positive item are not counted as negatives. Pairs weigh ``log(1 + weight)`` (repeat purchases count more).

After training only the towers' outputs are kept: one vector per user and per item (plain float32 arrays, so the
model store keeps them in its ``npz`` format whose loading runs no code). Scoring is a NumPy dot product, seen
items are excluded and users without history get popular items, as for every recommender of
``tasks.recommend``. Items with no training interaction rank last (their vectors were never trained).

TensorFlow is imported only in ``fit`` (``tasks.tf_runtime.import_tf``: MissingDependency with the install command
when it is missing). Seeds are fixed (Keras initialisation, the tf.data shuffle, op determinism on the CPU), so
a CPU run repeats exactly; on a GPU the towers run in mixed precision.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidArgument
from .recommend_base import Recommender, _positive, register

UNTRAINED_ITEM_BIAS = -10.0  # below any cosine score: items never seen in training rank last


@register
class TwoTowerRecommender(Recommender):
    """User and item towers over id embeddings, trained with an in-batch softmax; score = dot product of the
    towers' normalised outputs."""

    method = "two_tower"
    defaults = {"dim": 64, "hidden": 0, "epochs": 12, "batch_size": 512, "learning_rate": 0.005,
                "temperature": 0.1, "logq_correction": True, "random_state": 0}

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        _positive(self.method, p, "dim", "epochs", "batch_size", "learning_rate", "temperature")
        if p["hidden"] < 0:
            raise InvalidArgument("params", f"parameter 'hidden' of method 'two_tower' must be 0 (no hidden layer) or "
                                  f"more, got {p['hidden']!r}", "Pass e.g. {'hidden': 128}")
        if p["batch_size"] < 2:
            raise InvalidArgument("params", "parameter 'batch_size' of method 'two_tower' must be at least 2 (the "
                                  "other pairs of a batch are the negatives)", "Pass e.g. {'batch_size': 512}")
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.item_bias: np.ndarray | None = None
        self.notes: list[str] = []

    # -- training ----------------------------------------------------------------------------------------------
    def _fit(self, X: sp.csr_matrix) -> None:
        from .tf_runtime import import_tf, make_dataset

        tf, keras = import_tf("method := 'two_tower'")
        p = self.params
        n_users, n_items = X.shape
        X = X.tocoo()
        users = X.row.astype(np.int32)
        items = X.col.astype(np.int32)
        weight = np.log1p(X.data).astype(np.float32)
        counts = np.bincount(items, minlength=n_items).astype(np.float64)
        logq = np.log(np.maximum(counts, 1) / max(len(items), 1)).astype(np.float32)
        pair_logq = logq[items] if p["logq_correction"] else np.zeros(len(items), np.float32)
        on_gpu = bool(tf.config.list_physical_devices("GPU"))
        seed = int(p["random_state"])
        keras.utils.set_random_seed(seed)
        if not on_gpu:
            tf.config.experimental.enable_op_determinism()
        device = "/GPU:0" if on_gpu else "/CPU:0"
        dtype = "mixed_float16" if on_gpu else "float32"
        t0 = time.perf_counter()
        with tf.device(device):
            user_tower = _tower(keras, "user", n_users, p, dtype)
            item_tower = _tower(keras, "item", n_items, p, dtype)
            variables = user_tower.trainable_variables + item_tower.trainable_variables
            optimizer = keras.optimizers.Adam(float(p["learning_rate"]))
            optimizer.build(variables)
            inv_temp = np.float32(1.0 / float(p["temperature"]))

            @tf.function(reduce_retracing=True)
            def step(batch):
                inputs, lq, w = batch
                u, i = inputs["user"], inputs["item"]
                n = tf.shape(u)[0]
                with tf.GradientTape() as tape:
                    U = tf.cast(user_tower(u, training=True), tf.float32)
                    V = tf.cast(item_tower(i, training=True), tf.float32)
                    logits = tf.matmul(U, V, transpose_b=True) * inv_temp - lq[None, :]
                    dup = tf.logical_and(tf.equal(i[:, None], i[None, :]),
                                         tf.logical_not(tf.cast(tf.eye(n), tf.bool)))
                    logits = tf.where(dup, tf.constant(-1e9, tf.float32), logits)
                    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.range(n), logits=logits)
                    loss = tf.reduce_sum(w * ce) / tf.maximum(tf.reduce_sum(w), 1e-6)
                grads = tape.gradient(loss, variables)
                optimizer.apply_gradients(zip(grads, variables))
                return loss

            ds = make_dataset(tf, {"user": users, "item": items}, pair_logq, weight,
                              int(min(p["batch_size"], max(2, len(users)))), True, seed)

            @tf.function
            def epoch():  # the whole epoch in one graph: no Python between batches
                total, n_batches = tf.constant(0.0), tf.constant(0.0)
                for batch in ds:
                    total += step(batch)
                    n_batches += 1.0
                return total / tf.maximum(n_batches, 1.0)

            losses = [float(epoch()) for _ in range(int(p["epochs"]))]
            self.user_factors = _outputs(user_tower, n_users)
            self.item_factors = _outputs(item_tower, n_items)
        seconds = time.perf_counter() - t0
        self.item_bias = np.where(counts > 0, 0.0, UNTRAINED_ITEM_BIAS).astype(np.float32)
        self.notes = [f"two_tower trained {p['epochs']} epochs on {len(users):,} pairs on {device.strip('/')} in "
                      f"{seconds:.1f} s; in-batch softmax loss {losses[0]:.3f} -> {losses[-1]:.3f}"]
        self.train_seconds_ = seconds
        self.losses_ = losses

    # -- scoring -----------------------------------------------------------------------------------------------
    def _scores(self, users: np.ndarray, profile: sp.csr_matrix) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T + self.item_bias[None, :]

    # -- serialisation -----------------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**super().to_arrays(), "user_factors": self.user_factors, "item_factors": self.item_factors,
                "item_bias": self.item_bias}

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        self.item_bias = np.asarray(arrays["item_bias"], dtype=np.float32)


def _tower(keras, name: str, n: int, p: dict, dtype: str):
    layers = keras.layers
    ids = keras.Input((), name=f"{name}_id", dtype="int32")
    x = layers.Embedding(max(n, 1), int(p["dim"]), name=f"{name}_embedding", dtype=dtype)(ids)
    if p["hidden"]:
        x = layers.Dense(int(p["hidden"]), activation="relu", name=f"{name}_hidden", dtype=dtype)(x)
    x = layers.Dense(int(p["dim"]), name=f"{name}_projection", dtype=dtype)(x)
    x = layers.UnitNormalization(name=f"{name}_normalise", dtype="float32")(x)
    return keras.Model(ids, x, name=f"{name}_tower")


def _outputs(tower, n: int, step: int = 65536) -> np.ndarray:
    """The tower's vector for every id 0..n-1 (float32), in large batches."""
    if n == 0:
        return np.zeros((0, tower.output_shape[-1]), np.float32)
    return np.concatenate([np.asarray(tower(np.arange(s, min(s + step, n), dtype=np.int32), training=False),
                                      dtype=np.float32) for s in range(0, n, step)])
