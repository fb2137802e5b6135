"""SQL text as a client sends it: statements, ``$n`` parameters and leading keywords, read on the code only (never
inside a string or a comment), through the package's one lexer in ``warehouse_ml.sqltext``."""
from __future__ import annotations

import re

from ...sqltext import code_only
from ...sqltext import split_statements as split_sql


def split_statements(sql: str) -> list[str]:
    """Statements of a simple-query message, split on semicolons outside literals; empty ones dropped (an
    unfinished last one is sent as it is, for DuckDB to report)."""
    statements, rest = split_sql(sql)
    return statements + ([rest] if rest else [])


_PARAM = re.compile(r"\$(\d+)")


def parameter_count(sql: str) -> int:
    """The highest ``$n`` placeholder in the statement (0 when it has none)."""
    return max((int(m.group(1)) for m in _PARAM.finditer(code_only(sql))), default=0)


def first_words(sql: str, n: int = 3) -> list[str]:
    """The first ``n`` words of the statement's code, upper-cased (comments skipped)."""
    return code_only(sql).upper().replace("(", " ( ").split()[:n]
