#!/usr/bin/env bash
# A short MLP training on the GPU (when TensorFlow sees one) and on the CPU: prints samples/s for each.
#
#   bash benchmarks/gpu_check.sh                 # 200,000 rows x 30 features, 2 epochs, batch 2048
#   ROWS=1000000 EPOCHS=3 bash benchmarks/gpu_check.sh
#
# It trains the network warehouse-ml builds for algorithm := 'mlp' (mixed precision on the GPU, float32 on
# the CPU) through the same tf.data input path ml_train uses, on synthetic in-memory data. Each side's time
# includes building the model and tracing its training step; a one-epoch warm-up on 20,000 rows runs first
# so that the GPU's start-up (CUDA context, kernels) is not counted. With no GPU it says so and measures the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
ROWS="${ROWS:-200000}" EPOCHS="${EPOCHS:-2}" BATCH="${BATCH:-2048}" exec "$PYTHON" - <<'PY'
import os, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from warehouse_ml.tasks import deep, tf_runtime

rows, epochs, batch = int(os.environ["ROWS"]), int(os.environ["EPOCHS"]), int(os.environ["BATCH"])
tf, keras = tf_runtime.import_tf()
gpus = tf.config.list_physical_devices("GPU")
print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; ml_device() would say: {tf_runtime.device_name()}")
if gpus:
    for g in gpus:
        print("  GPU:", g.name, tf.config.experimental.get_device_details(g).get("device_name", ""))
else:
    print("no GPU found: TensorFlow sees only the CPU (install tensorflow[and-cuda] on a machine with an NVIDIA GPU); "
          "measuring the CPU only")

rng = np.random.default_rng(0)
X = np.column_stack([rng.normal(size=(rows, 27)), rng.integers(0, 12, size=(rows, 3)).astype(float)])
X[rng.random(X.shape) < 0.02] = np.nan
y = ((X[:, 0] + np.nan_to_num(X[:, 1]) * (X[:, 2] > 0) + (X[:, 27] == 3)) > 0.5).astype(np.float32)
categorical = np.array([False] * 27 + [True] * 3)


def train(device: str, n: int, n_epochs: int) -> float:
    est = deep.KerasMLPClassifier(categorical=categorical, batch_size=batch)
    est.prep_ = deep.TabularPrep.fit(X[:n], categorical)
    est.n_outputs_, est._output = 1, "sigmoid"
    inputs = deep.model_inputs(est.prep_, *est.prep_.transform(X[:n]))
    on_gpu = device.startswith("/GPU")
    tf_runtime.seed_everything(tf, keras, 0, deterministic=not on_gpu)
    t = time.perf_counter()
    with tf.device(device):
        model = est._build(keras, mixed_precision=on_gpu)
        data = tf_runtime.make_dataset(tf, inputs, y[:n], None, batch, True, 0)
        model.fit(data, epochs=n_epochs, verbose=0)
    return n * n_epochs / (time.perf_counter() - t)


results = {}
for device in (["/GPU:0"] if gpus else []) + ["/CPU:0"]:
    train(device, min(rows, 20_000), 1)  # warm-up
    results[device] = train(device, rows, epochs)
    print(f"{device.strip('/'):>6}: {results[device]:>12,.0f} samples/s  ({rows:,} rows x 30 features, {epochs} epochs, "
          f"batch {batch}{', mixed precision' if device.startswith('/GPU') else ''})", flush=True)
if gpus:
    print(f"GPU / CPU: {results['/GPU:0'] / results['/CPU:0']:.1f}x")
PY
