"""What a UDF gets to work with: a second cursor, catalog lookups and the model store of its connection."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from ..store import ModelStore
from .catalog import Relation, resolve

log = logging.getLogger("warehouse_ml")


class Runtime:
    """Per-connection state: the connection the UDFs were registered on and its model store (with cache)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.store = ModelStore(con)
        self.read_only = False  # set by a host (the server) whose session may read but not change the store


class CallContext:
    """Handed to every UDF call. Reads and writes go through fresh cursors, never the running connection."""

    def __init__(self, runtime: Runtime, function: str):
        self.runtime = runtime
        self.function = function
        self._cursor: duckdb.DuckDBPyConnection | None = None

    @property
    def store(self) -> ModelStore:
        return self.runtime.store

    def cursor(self) -> duckdb.DuckDBPyConnection:
        if self._cursor is None:
            self._cursor = self.runtime.con.cursor()
        return self._cursor

    def relation(self, name: str, argument: str = "relation") -> Relation:
        return resolve(self.cursor(), name, argument)

    def read_arrow(self, query: str, params: list | None = None) -> pa.Table:
        """Run a query built only from quoted, catalog-resolved names (values as parameters)."""
        return self.cursor().sql(query, params=params or None).to_arrow_table()

    def stream_arrow(self, query: str, batch_size: int = 1_000_000) -> Iterator[pa.RecordBatch]:
        """Large results in Arrow record batches, so memory stays bounded for whole-table scoring."""
        reader = self.cursor().sql(query).to_arrow_reader(batch_size)
        yield from reader
