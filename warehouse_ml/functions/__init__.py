"""SQL entry points of each task, registered as Arrow UDFs by ``binding.registry.install``.

Each module here adapts one task's pure kernels (``warehouse_ml.tasks``) to DuckDB: it resolves relation and
column names, reads Arrow through a second cursor, calls the kernel, and returns Arrow. Each SQL function is
declared once, by its spec (``binding.spec``): its TEMP macro, option checks and registration come from it.
"""
from . import (  # noqa: F401  (importing a module registers its UDFs)
    abtest, deep, drivers, forecast, monitor, prep, pricing, privacy, recommend, registry_ops, segment, sequence,
    supervised,
)
