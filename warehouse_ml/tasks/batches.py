"""The features of DuckDB's row batches as a matrix, with the per-batch work compiled once per model.

ml_predict is called on every ~2048-row batch of a query, so what costs is not the arithmetic but the Python
around it: ``Featurizer.transform`` looks features up by name, picks an encoding per column and goes through
pyarrow's compute layer for each column of each batch. A ``BatchEncoder`` decides all of that once per model
and struct type, and reads the two common column kinds with as few calls as it can:

* the float64 columns: all together in one Arrow call (NULL as NaN), then inf and -inf made NaN in a
  compiled pass (the missing value, like NaN and NULL);
* each text category column: the category's position in the model's list, NaN for NULL and for unseen text
  (what ``pc.index_in`` gives), compared byte for byte on the Arrow buffers in a compiled loop.

Any other column type takes ``features.encode_column``. The result equals ``Featurizer.transform`` value for
value (``tests/test_scoring.py``).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from .features import Featurizer, encode_column

_NO_BYTES = np.zeros(0, dtype=np.uint8)


@njit(nogil=True, cache=True)
def _is_null(valid, row):  # pragma: no cover  (compiled: exercised through the tests)
    return valid.shape[0] > 0 and not (valid[row >> 3] >> (row & 7)) & 1


@njit(nogil=True, cache=True)
def _infinite_as_nan(X):  # pragma: no cover
    for j in range(X.shape[0]):
        for i in range(X.shape[1]):
            if np.isinf(X[j, i]):
                X[j, i] = np.nan


@njit(nogil=True, cache=True)
def _category_codes(offsets, data, valid, offset, cat_offsets, cat_bytes, out):  # pragma: no cover
    for i in range(out.shape[0]):
        row = offset + i
        out[i] = np.nan
        if _is_null(valid, row):
            continue
        start, length = offsets[row], offsets[row + 1] - offsets[row]
        for k in range(cat_offsets.shape[0] - 1):
            c = cat_offsets[k]
            if cat_offsets[k + 1] - c != length:
                continue
            same = True
            for b in range(length):
                if data[start + b] != cat_bytes[c + b]:
                    same = False
                    break
            if same:
                out[i] = k
                break


def _bytes(buf) -> np.ndarray:
    return _NO_BYTES if buf is None else np.frombuffer(buf, dtype=np.uint8)


def _category_encoder(categories: list[str]):
    encoded = [c.encode("utf-8") for c in categories]
    cat_offsets = np.cumsum([0] + [len(c) for c in encoded]).astype(np.int64)
    cat_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8) if cat_offsets[-1] else _NO_BYTES

    def encode(col: pa.Array, out: np.ndarray) -> None:
        validity, offsets, data = col.buffers()
        width = np.int64 if pa.types.is_large_string(col.type) else np.int32
        _category_codes(np.frombuffer(offsets, dtype=width, count=col.offset + len(col) + 1), _bytes(data),
                        _bytes(validity), col.offset, cat_offsets, cat_bytes, out)
    return encode


class BatchEncoder:
    """``Featurizer.transform`` of a row struct, planned once per model and struct type: returns an F-ordered
    rows × features view of a (features × rows) buffer. The float64 features come out of one Arrow call
    (``to_tensor``, NULL as NaN), the text categories one compiled pass each, anything else ``encode_column``."""

    def __init__(self, featurizer: Featurizer, model: str):
        self.featurizer, self.model = featurizer, model
        self._struct: pa.DataType | None = None  # the last struct type seen, and the plan made for it

    def __call__(self, rows: pa.StructArray) -> np.ndarray:
        if self._struct is None or not rows.type.equals(self._struct):  # compared in C++ (hashing prints the type)
            self._plan(rows.type)
        out = np.empty((len(self.featurizer.features), len(rows)), dtype=np.float64)
        if not len(rows):
            return out.T
        if self._doubles:
            batch = pa.RecordBatch.from_struct_array(rows).select(self._doubles)
            doubles = np.asarray(batch.to_tensor(null_to_nan=True, row_major=False)).T
            for into, source in self._double_runs:
                out[into] = doubles[source]
        for j, i, encode in self._others:
            encode(rows.field(i), out[j])
        _infinite_as_nan(out)  # inf is missing, like NaN and NULL (other columns hold no inf: a no-op there)
        return out.T

    def _plan(self, struct: pa.StructType) -> None:
        positions = self.featurizer.positions([struct.field(i).name for i in range(struct.num_fields)], self.model)
        self._doubles, rows, self._others = [], [], []
        for j, (spec, i) in enumerate(zip(self.featurizer.features, positions)):
            t = struct.field(i).type
            if spec["kind"] == "numeric" and pa.types.is_float64(t):
                self._doubles.append(i)
                rows.append(j)
            elif spec["kind"] == "categorical" and "hash_salt" not in spec and (
                    pa.types.is_string(t) or pa.types.is_large_string(t)):
                self._others.append((j, i, _category_encoder(spec["categories"])))
            else:
                self._others.append((j, i, _encoded_as(spec)))
        # the double features' rows of the buffer as runs of consecutive rows: a slice copy each (a fancy-indexed
        # copy costs several times more)
        self._double_runs = []  # (rows of the buffer, rows of the doubles' tensor)
        for k, j in enumerate(rows):
            if k and j == rows[k - 1] + 1:
                into, source = self._double_runs.pop()
                self._double_runs.append((slice(into.start, j + 1), slice(source.start, k + 1)))
            else:
                self._double_runs.append((slice(j, j + 1), slice(k, k + 1)))
        self._struct = struct


def _encoded_as(spec: dict):
    def encode(col: pa.Array, out: np.ndarray) -> None:
        out[:] = encode_column(col, spec)
    return encode
