"""Turning Arrow columns into a numeric feature matrix, the same way at training and at prediction time.

A ``Featurizer`` is fitted on the training table: it decides which columns are features (ID-like, constant,
all-NULL and temporal columns are excluded, with the reason reported), remembers the categories of each text
column (the most frequent ones; rarer and unseen categories become missing), and then maps any Arrow table
or struct column with those fields to a float64 matrix. NULL stays NaN: each estimator pipeline imputes in
the way it needs. Everything it stores is JSON, so a model's preprocessing travels with it and loads safely.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidArgument, did_you_mean
from . import roles
from .roles import looks_like_id

MAX_CATEGORIES = 64
TRANSPOSE_BLOCK = 8  # feature columns encoded per block in Featurizer.transform
ROWS_PER_SLICE = 65_536  # rows of a table encoded per block in Featurizer.transform


@dataclass
class Featurizer:
    features: list[dict] = field(default_factory=list)  # {"name", "kind": numeric|categorical, "categories"?}
    excluded: list[dict] = field(default_factory=list)  # {"name", "reason"}

    # -- fitting ----------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, table: pa.Table, label: str | None, exclude: list[str] = (),
            hashed: dict[str, str] | None = None) -> "Featurizer":
        """``hashed``: text column -> salt; its categories are stored as salted digests, never as raw values."""
        self = cls()
        hashed = hashed or {}
        n = table.num_rows
        skip = {c.lower() for c in exclude}
        for name in table.column_names:
            if name == label:
                continue
            if name.lower() in skip:
                self.excluded.append({"name": name, "reason": "excluded by the exclude argument"})
                continue
            col = table.column(name)
            if name in hashed:
                col = _hashed(col, hashed[name])
            t = col.type
            if pa.types.is_temporal(t):
                self.excluded.append({"name": name, "reason": "date/time column: derive a number from it (e.g. days since) to use it"})
                continue
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                    or pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
                    or pa.types.is_dictionary(t)):
                self.excluded.append({"name": name, "reason": f"type {t} is not a usable feature type"})
                continue
            non_null = n - col.null_count
            if non_null == 0:
                self.excluded.append({"name": name, "reason": "all values are NULL"})
                continue
            if pa.types.is_floating(t):  # min == max is cheaper than counting distinct floats; IDs are never floats
                distinct = 1 if _float_constant(col) else non_null
            elif pa.types.is_integer(t) and not roles.id_by_name(name):  # a count: only its name could make it an ID
                distinct = 1 if _int_constant(col) else non_null
            elif pa.types.is_decimal(t):
                lo_hi = pc.min_max(col).as_py()
                distinct = 1 if lo_hi["min"] == lo_hi["max"] else non_null
            else:
                distinct = distinct_count(col)
            if distinct <= 1:
                self.excluded.append({"name": name, "reason": "constant: a single distinct value"})
                continue
            is_text = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)
            if looks_like_id(name, t, distinct, non_null):
                self.excluded.append({"name": name, "reason": "ID-like: a unique identifier carries no signal"})
                continue
            if is_text:
                counts = pc.value_counts(col.drop_null()).to_pylist() if non_null else []
                counts.sort(key=lambda d: (-d["counts"], str(d["values"])))
                cats = [str(d["values"]) for d in counts[:MAX_CATEGORIES]]
                spec = {"name": name, "kind": "categorical", "categories": cats}
                if name in hashed:
                    spec["hash_salt"] = hashed[name]
                self.features.append(spec)
            else:
                self.features.append({"name": name, "kind": "numeric"})
        if not self.features:
            reasons = "; ".join(f"{e['name']}: {e['reason']}" for e in self.excluded) or "the relation has no other columns"
            raise InvalidArgument("relation", f"no usable feature columns ({reasons})",
                                  "Add numeric or text feature columns besides the label")
        return self

    @classmethod
    def from_json(cls, features: list[dict], excluded: list[dict] | None = None) -> "Featurizer":
        return cls(features=list(features), excluded=list(excluded or []))

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.features]

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([f["kind"] == "categorical" for f in self.features], dtype=bool)

    # -- transforming -----------------------------------------------------------------------------------
    def columns_of(self, data: pa.Table | pa.StructArray, model: str = "model") -> list[pa.Array]:
        """The feature columns of a table or a row struct, matched by name (case-insensitively)."""
        if isinstance(data, pa.Table):
            names = data.column_names
            get = lambda i: data.column(i).combine_chunks()  # noqa: E731
        else:
            names = [data.type.field(i).name for i in range(data.type.num_fields)]
            get = lambda i: data.field(i)  # noqa: E731
        return [get(i) for i in self.positions(names, model)]

    def positions(self, names: list[str], model: str = "model") -> list[int]:
        """Where each feature is among ``names`` (case-insensitively); a missing one is a clear error."""
        lower = {n.lower(): i for i, n in enumerate(names)}
        out = []
        for f in self.features:
            i = lower.get(f["name"].lower())
            if i is None:
                raise InvalidArgument(
                    "row", f"the row has no field '{f['name']}', which model '{model}' uses.{did_you_mean(f['name'], names)}",
                    f"Pass whole rows of a table holding the model's features: SELECT ml_predict('{model}', t) FROM my_table t",
                )
            out.append(i)
        return out

    def transform(self, data: pa.Table | pa.StructArray, model: str = "model") -> np.ndarray:
        """The rows x features float64 matrix (C order). A table is encoded a slice of rows at a time (at most
        ROWS_PER_SLICE, taken from its record batches without copying), eight columns at a time into a small
        features x rows block that is written transposed: writing one column of a C-ordered matrix at a time, a
        stride per value, took twice as long, and the block stays in the processor's cache instead of each column
        being copied whole first (the fresh memory that costs most on a machine that has just been idle)."""
        if isinstance(data, pa.Table):
            slices = [batch.slice(start, ROWS_PER_SLICE) for batch in
                      data.select(self.positions(data.column_names, model)).to_batches()
                      for start in range(0, batch.num_rows, ROWS_PER_SLICE)]
            columns = [batch.columns for batch in slices]
        else:
            columns = [self.columns_of(data, model)]
        k = len(self.features)
        n = sum(len(cols[0]) for cols in columns) if k else len(data)
        X = np.empty((n, k), dtype=np.float64)
        block = np.empty((min(TRANSPOSE_BLOCK, k), max([len(cols[0]) for cols in columns if cols], default=0)))
        row = 0
        for cols in columns:
            m = len(cols[0]) if cols else 0
            for start in range(0, k, TRANSPOSE_BLOCK):
                width = min(TRANSPOSE_BLOCK, k - start)
                for i in range(width):
                    block[i, :m] = encode_column(cols[start + i], self.features[start + i])
                X[row:row + m, start:start + width] = block[:width, :m].T
            row += m
        return X


def distinct_count(col: pa.ChunkedArray) -> int:
    """The number of distinct non-NULL values: integers through pandas' hash table (a third of the time of
    Arrow's count_distinct on half a million keys), or without hashing when they strictly increase (a key as
    tables are usually written: 3 ms where hashing 2M keys took 100), anything else through Arrow."""
    if pa.types.is_integer(col.type):
        values = pc.drop_null(col).to_numpy()
        if strictly_increasing(values):
            return len(values)
        return len(pd.unique(values))
    return pc.count_distinct(col).as_py()


def strictly_increasing(values: np.ndarray) -> bool:
    """Whether every value is greater than the one before: then all are distinct, with no hashing."""
    return len(values) < 2 or bool(np.all(values[1:] > values[:-1]))


def encode_column(col: pa.Array, spec: dict) -> np.ndarray:
    """One feature column as float64: numbers as they are, text as category codes; NULL, NaN, inf, unseen
    categories and (in a numeric feature) text that is not a number all become NaN, the missing value."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if spec["kind"] == "categorical":
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            col = pc.cast(col, pa.string())
        if "hash_salt" in spec:
            col = _hashed(col, spec["hash_salt"])
        codes = pc.index_in(col, value_set=pa.array(spec["categories"], pa.string()))
        return codes.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls (missing or unseen) -> NaN
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        col = parse_numbers(col)
    elif not pa.types.is_floating(t):
        col = pc.cast(col, pa.float64())
    arr = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    infinite = np.isinf(arr)
    return np.where(infinite, np.nan, arr) if infinite.any() else arr  # inf is missing, like NaN and NULL


# Text a number can be written as (what DuckDB's TRY_CAST(x AS DOUBLE) accepts, less hexadecimal).
_DIGITS = r"\d(_?\d)*"  # DuckDB reads 1_000 as 1000
_NUMBER_TEXT = (rf"^[+-]?({_DIGITS}\.?(\d*)([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|(?i:inf|infinity|nan))$")


def parse_numbers(col: pa.Array) -> pa.Array:
    """Text as float64 the way the front door's ``TRY_CAST(x AS DOUBLE)`` reads it: unparsable text is NULL."""
    text = pc.utf8_trim_whitespace(col)
    ok = pc.match_substring_regex(text, _NUMBER_TEXT)
    digits = pc.replace_substring(text, "_", "")
    return pc.cast(pc.if_else(ok, digits, pa.scalar(None, text.type)), pa.float64())


def _float_constant(col: pa.ChunkedArray) -> bool:
    """Whether the present values of a floating column (at least one) are all equal, NaN aside as Arrow's
    min_max leaves it: NumPy's fmin and fmax skip NaN, and NULL reads as NaN (an eighth of min_max's time)."""
    chunks = [c.to_numpy(zero_copy_only=False) for c in col.chunks if len(c) > c.null_count]
    lo = np.fmin.reduce([np.fmin.reduce(c) for c in chunks])
    hi = np.fmax.reduce([np.fmax.reduce(c) for c in chunks])
    return bool(lo == hi)


def _int_constant(col: pa.ChunkedArray) -> bool:
    """Whether the present values of an integer column (at least one) are all equal: NumPy's min and max of the
    non-NULL values, exact for any 64-bit value."""
    values = pc.drop_null(col).to_numpy()
    return bool(values.min() == values.max())


def _all_finite(col: pa.ChunkedArray) -> bool:
    """True when no present value is NaN or infinite: one NumPy pass per chunk (NULL reads as NaN there, so the
    NULLs are counted out), a third of the time of Arrow's is_nan, is_inf, or and sum."""
    return all(np.count_nonzero(~np.isfinite(chunk.to_numpy(zero_copy_only=False))) == chunk.null_count
               for chunk in col.chunks)


def nonfinite_as_null(table: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """The numeric policy at the door of training: NaN, inf and -inf in floating columns become NULL (a missing
    value, imputed or left out like any NULL). Returns the table and the count replaced per column."""
    counts = {}
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if not pa.types.is_floating(col.type) or _all_finite(col):
            continue
        bad = pc.or_(pc.is_nan(col), pc.is_inf(col))
        k = pc.sum(bad).as_py() or 0
        if k:
            table = table.set_column(i, name, pc.if_else(bad, pa.scalar(None, col.type), col))
            counts[name] = int(k)
    return table, counts


def _hashed(col, salt: str) -> pa.Array:
    """A personal text column as salted digests (``tasks.privacy.hash_categories``)."""
    from .privacy import hash_categories

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return hash_categories(col, salt)


def split_groups(table: pa.Table) -> tuple[np.ndarray | None, list[str]]:
    """Which rows must stay on the same side of a train/hold-out split, so copies never flatter the hold-out.

    Exact duplicate rows (equal in every column) form one group; when a column naming whom the row is about
    (``id``, ``user_id``, ``customer``, ...) repeats, all rows sharing its value form one group too. Returns a
    group id per row (None when every row is its own group) and notes counting what was grouped."""
    n = table.num_rows
    if n == 0:
        return None, []
    keys = {name: _codes(col) for name, col in zip(table.column_names, table.columns)
            if roles.ENTITY.match(name) and (pa.types.is_integer(col.type) or pa.types.is_string(col.type)
                                              or pa.types.is_large_string(col.type))}
    if any(table.column(name).null_count == 0 and int(key.max()) + 1 == n for name, key in keys.items()):
        copies = np.arange(n)  # a key no two rows share: no row can be a copy of another, nothing to hash
    else:
        row_hash = np.zeros(n, np.uint64)
        for name in table.column_names:  # FNV-1a over 64-bit words: equal rows, equal hashes
            row_hash ^= _value_bits(table.column(name))
            row_hash *= np.uint64(0x100000001B3)
        copies = pd.factorize(row_hash)[0]  # hash-based, linear time
    counts = np.bincount(copies)
    notes = []
    if len(counts) < n:
        notes.append(f"{n - len(counts)} exact duplicate rows (copies of {int((counts > 1).sum())} distinct rows): "
                     "copies are kept on one side of the hold-out split")
    for name, key in keys.items():
        distinct = int(key.max()) + 1
        if 1 < distinct < n - table.column(name).null_count:
            notes.append(f"rows sharing a {name} ({distinct} distinct) are kept on one side of the hold-out split")
            return np.where(key >= 0, key, distinct + copies), notes  # rows without a key group as copies
    return (copies if notes else None), notes


def _value_bits(col: pa.ChunkedArray) -> np.ndarray:
    """A 64-bit value per row, equal for equal values (NULL included): numbers by their bits, the rest by
    dictionary code."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_boolean(t):
        col, t = pc.cast(col, pa.int8()), pa.int8()
    if pa.types.is_floating(t) or pa.types.is_integer(t):  # NULL arrives as NaN
        return np.ascontiguousarray(col.to_numpy(zero_copy_only=False), dtype=np.float64).view(np.uint64)
    return _codes(col).view(np.uint64)


def _codes(col: pa.ChunkedArray) -> np.ndarray:
    """Equal values get equal codes 0, 1, ...; NULL gets -1 (codes in order of first appearance, as
    ``pd.factorize`` gives them)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_integer(col.type):
        values = col.to_numpy(zero_copy_only=False)
        if col.null_count == 0 and strictly_increasing(values):
            return np.arange(len(values), dtype=np.int64)  # a key as tables are usually written: 2 ms, hashing 170
        return pd.factorize(values)[0].astype(np.int64)
    enc = pc.dictionary_encode(col)
    return pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
