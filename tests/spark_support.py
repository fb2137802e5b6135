"""What the Spark test modules share: one local SparkSession for the whole test run, and the comparisons with DuckDB.

The fixture is session-scoped and every module imports it: each import is its own fixture definition, but
``getOrCreate`` hands the second the session the first started, so one JVM serves every Spark test.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run in this environment
    session = (SparkSession.builder.master("local[2]").appName("warehouse-ml-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.warehouse.dir", str(tmp_path_factory.getbasetemp() / "spark-warehouse"))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def assert_same_numbers(got, want, tol=1e-9):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) <= tol


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]):
    """Same columns and types' values: keys and text exactly, numbers to 1e-9 with NULL/NaN in the same places."""
    assert list(got.columns) == list(want.columns)
    got = got.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)
    want = want.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)
    assert len(got) == len(want) > 0
    for c in want.columns:
        if pd.api.types.is_float_dtype(want[c]):
            assert_same_numbers(got[c], want[c])
        elif c == "date":
            assert [pd.Timestamp(d) for d in got[c]] == [pd.Timestamp(d) for d in want[c]]
        else:
            assert [None if pd.isna(v) else v for v in got[c]] == [None if pd.isna(v) else v for v in want[c]], c
