"""ml_device(): the device deep training would use, as SQL sees it.

Deep models themselves train through ``ml_train(..., algorithm := 'mlp')`` (``functions.supervised`` and
``tasks.deep``). TensorFlow is imported only when ``ml_device()`` is called, never when the functions are
installed, so a connection without TensorFlow installs and runs every classical function.
"""
from __future__ import annotations

import pyarrow as pa

from ..binding.spec import sql_function
from ..tasks.tf_runtime import device_name


@sql_function("ml_device", "The device deep training would use (GPU name or CPU), as SQL sees it.", kind="scalar",
              returns="VARCHAR")
def ml_device(ctx):
    return pa.array([device_name()], pa.string())
