"""SQL text as a client sends it, cut into code and literals, so rewrites never touch a string or a comment."""
from __future__ import annotations

import re
from collections.abc import Callable

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def segments(sql: str) -> list[tuple[bool, str]]:
    """``[(is_code, text), ...]`` covering ``sql``: quoted strings, quoted identifiers, dollar-quoted bodies and
    comments are not code."""
    out: list[tuple[bool, str]] = []
    i, start, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        end = -1
        if c == "'" or c == '"':
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                if c == "'" and sql[j] == "\\" and i > 0 and sql[i - 1] in "eE":
                    j += 1
                j += 1
            end = min(j + 1, n)
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            end = n if j < 0 else j
        elif c == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            end = j
        elif c == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            m = _DOLLAR.match(sql, i)
            if m:
                j = sql.find(m.group(0), m.end())
                end = n if j < 0 else j + len(m.group(0))
        if end < 0:
            i += 1
            continue
        if start < i:
            out.append((True, sql[start:i]))
        out.append((False, sql[i:end]))
        i = start = end
    if start < n:
        out.append((True, sql[start:]))
    return out


def map_code(sql: str, fn: Callable[[str], str]) -> str:
    """``sql`` with ``fn`` applied to each stretch of code (never to literals or comments)."""
    return "".join(fn(text) if code else text for code, text in segments(sql))


def code_only(sql: str) -> str:
    """``sql`` with every literal and comment blanked to a space: for keyword tests that must not be fooled."""
    return "".join(text if code else " " for code, text in segments(sql))


def split_statements(sql: str) -> list[str]:
    """Statements of a simple-query message, split on semicolons outside literals; empty ones dropped."""
    stmts, buf = [], []
    for code, text in segments(sql):
        if not code:
            buf.append(text)
            continue
        parts = text.split(";")
        for k, part in enumerate(parts):
            buf.append(part)
            if k < len(parts) - 1:
                stmts.append("".join(buf))
                buf = []
    stmts.append("".join(buf))
    return [s.strip() for s in stmts if code_only(s).strip()]


_PARAM = re.compile(r"\$(\d+)")


def parameter_count(sql: str) -> int:
    """The highest ``$n`` placeholder in the statement (0 when it has none)."""
    return max((int(m.group(1)) for m in _PARAM.finditer(code_only(sql))), default=0)


def first_words(sql: str, n: int = 3) -> list[str]:
    """The first ``n`` words of the statement's code, upper-cased (comments skipped)."""
    return code_only(sql).upper().replace("(", " ( ").split()[:n]
