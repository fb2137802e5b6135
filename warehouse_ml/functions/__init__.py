"""SQL entry points of each task, registered as Arrow UDFs by ``binding.registry.install``.

Each module here adapts one task's pure kernels (``warehouse_ml.tasks``) to DuckDB: it resolves relation and
column names, reads Arrow through a second cursor, calls the kernel, and returns Arrow. The matching table
macros live in ``sql/<module>.sql``.
"""
from . import registry_ops, supervised  # noqa: F401
from . import segment, abtest, pricing  # noqa: F401
from . import prep  # noqa: F401
from . import forecast  # noqa: F401
from . import deep  # noqa: F401
from . import recommend, sequence  # noqa: F401
