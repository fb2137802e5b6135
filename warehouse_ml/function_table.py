"""README's function table, generated from the specs: ``python -m warehouse_ml.function_table README.md``
rewrites it in place; tests/test_spec.py fails when README and the specs disagree."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from . import wiring  # noqa: F401  (declares every function)
from .binding.spec import function_table

_TABLE = re.compile(r"(<!-- functions:begin[^>]*-->\n).*?(<!-- functions:end -->)", re.S)


def readme_with_function_table(text: str) -> str:
    """README text with its function table (between the functions:begin/end markers) generated from the specs."""
    if not _TABLE.search(text):
        raise ValueError("README lacks the <!-- functions:begin --> ... <!-- functions:end --> markers")
    return _TABLE.sub(lambda m: m.group(1) + function_table() + "\n" + m.group(2), text, count=1)


if __name__ == "__main__":
    readme = Path(sys.argv[1])
    readme.write_text(readme_with_function_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
