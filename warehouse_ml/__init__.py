"""warehouse-ml: machine learning as SQL functions and table macros on a DuckDB connection.

    import warehouse_ml as wml
    con = wml.connect("shop.duckdb")
    wml.sql(con, "SELECT user_id, predict_churn(*) FROM user_features")
"""
from __future__ import annotations

import logging

import duckdb

from .errors import WmlError

__version__ = "0.1.0"
__all__ = ["connect", "install", "sql", "WmlError", "__version__"]

logging.getLogger("warehouse_ml").addHandler(logging.NullHandler())


def install(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Register every warehouse-ml function on ``con`` (once) and create its TEMP macros. Returns ``con``."""
    from .wiring import install as install_everything  # loads the function modules only when first asked

    return install_everything(con)


def connect(database: str = ":memory:", read_only: bool = False, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every warehouse-ml function installed."""
    con = duckdb.connect(database, read_only=read_only, config=config or {})
    return install(con)


def sql(con: duckdb.DuckDBPyConnection, query: str, params=None):
    """The front door: rewrites ``predict_*(*)`` and BigQuery ML statements, then runs on DuckDB."""
    from . import wiring  # noqa: F401  (the front door reads the declared row functions and statement handlers)
    from .frontdoor import run

    return run(con, query, params)
