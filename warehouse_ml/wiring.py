"""The one module that imports the plugins: every SQL function module and the front door's statement handlers.

Importing ``warehouse_ml.functions`` declares every UDF with ``binding.registry``; importing the BigQuery
modules registers their statement handlers with ``frontdoor``. Lower layers never import these, so the package
has no import cycle (``tests/test_import_cycles.py``) and what is installed never depends on which module was
imported first. ``warehouse_ml.install`` / ``connect`` come through here; ``warehouse_ml`` itself imports this
module only when asked to install, so importing a kernel (``warehouse_ml.tasks``) stays light.
"""
from __future__ import annotations

import duckdb

from . import functions  # noqa: F401  (declares every SQL function's UDFs)
from .binding import registry
from .integrations import bigquery_dp, bigquery_ml  # noqa: F401  (register their front-door statement handlers)


def install(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Register every warehouse-ml UDF on ``con`` (once) and create the TEMP macros (every call). Returns ``con``."""
    return registry.install(con)


def writing_functions() -> frozenset[str]:
    """Names of the functions that change the model store (declared with ``writes=True``): macros and UDFs."""
    return registry.writing_functions()


def row_functions() -> frozenset[str]:
    """Names of the functions that take a whole row (declared with ``row_input=True``)."""
    return registry.row_functions()
