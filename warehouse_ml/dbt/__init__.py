"""dbt-duckdb plugin: every warehouse-ml function on the connections dbt uses.

In ``profiles.yml``::

    shop:
      target: dev
      outputs:
        dev:
          type: duckdb
          path: "{{ env_var('WML_DB', 'shop.duckdb') }}"
          plugins:
            - module: warehouse_ml.dbt
              config: {verbose: true}      # optional: log training/forecast progress to dbt's log

dbt-duckdb calls ``configure_connection`` once on its parent connection (the Python UDFs are registered there
and every cursor sees them) and ``configure_cursor`` on every cursor it runs a model with (TEMP macros are
per cursor, so they are created there). Models that call warehouse-ml functions must be materialised as
tables: a view would store the call, and a client without the package could not read it.
"""
from __future__ import annotations

import logging
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from ..binding.registry import install_macros
from ..errors import InvalidArgument
from ..wiring import install

log = logging.getLogger("warehouse_ml")

#: config keys this plugin accepts under ``plugins: [{module: warehouse_ml.dbt, config: {...}}]``
OPTIONS = {
    "verbose": "log warehouse-ml progress (training, forecasting) at INFO level: true/false (default false)",
}


class Plugin(BasePlugin):
    """``plugins: [{module: warehouse_ml.dbt}]`` in a dbt-duckdb profile."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # dbt-duckdb merges the profile's DuckDB ``settings`` into every plugin's config: those are not ours
        settings = set((getattr(self.creds, "settings", None) or {}).keys())
        config = {k: v for k, v in (plugin_config or {}).items() if k not in settings}
        unknown = sorted(set(config) - set(OPTIONS))
        if unknown:
            accepted = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
            raise InvalidArgument(
                f"plugins[warehouse_ml.dbt].config.{unknown[0]}",
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)} "
                "for the warehouse-ml dbt plugin",
                f"Remove it from profiles.yml. Accepted options: {accepted}")
        verbose = config.get("verbose", False)
        if not isinstance(verbose, bool):
            raise InvalidArgument("plugins[warehouse_ml.dbt].config.verbose", f"expected true or false, got {verbose!r}",
                                  "Write verbose: true or verbose: false in profiles.yml")
        self.verbose = verbose
        if verbose:
            logging.getLogger("warehouse_ml").setLevel(logging.INFO)

    def configure_connection(self, conn) -> None:
        """Register the UDFs (visible on every cursor of ``conn``) and the model store schema."""
        install(conn)
        log.info("warehouse-ml installed on the dbt connection")

    def configure_cursor(self, cursor) -> None:
        """TEMP macros are per cursor: create them on each cursor dbt runs models with."""
        install_macros(cursor)
