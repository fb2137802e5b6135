"""SQL text cut into code, literals and comments, and split into statements: one lexer for the shell, the macro
files and the PostgreSQL server.

DuckDB's ``extract_statements`` splits only what DuckDB parses, and the front door also takes statements DuckDB
does not (BigQuery ML's ``CREATE MODEL``); a shell must also tell an unfinished statement from a wrong one. So
statements end at a semicolon outside quotes ('...', E'...', "...", $$...$$, $tag$...$tag$) and comments
(-- and nested /* */).
"""
from __future__ import annotations

import re

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _literal_end(sql: str, i: int) -> tuple[int, bool]:
    """(end, finished) of the literal or comment starting at ``i``; end is -1 when none starts there."""
    n, c = len(sql), sql[i]
    if c == "'" or c == '"':
        j = i + 1
        while j < n:
            if sql[j] == c:
                if j + 1 < n and sql[j + 1] == c:  # a doubled quote is part of the text
                    j += 2
                    continue
                return j + 1, True
            if c == "'" and sql[j] == "\\" and i > 0 and sql[i - 1] in "eE":  # E'...' escapes
                j += 1
            j += 1
        return n, False
    if sql.startswith("--", i):
        j = sql.find("\n", i)
        return (n if j < 0 else j), True
    if sql.startswith("/*", i):
        depth, j = 1, i + 2
        while j < n and depth:
            if sql.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif sql.startswith("*/", j):
                depth, j = depth - 1, j + 2
            else:
                j += 1
        return j, depth == 0
    if c == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")) and (m := _DOLLAR.match(sql, i)):
        j = sql.find(m.group(0), m.end())
        return (n, False) if j < 0 else (j + len(m.group(0)), True)
    return -1, True


def _scan(sql: str) -> list[tuple[bool, str, bool]]:
    """``[(is_code, text, finished), ...]`` covering ``sql``."""
    out: list[tuple[bool, str, bool]] = []
    i = start = 0
    n = len(sql)
    while i < n:
        end, finished = _literal_end(sql, i) if sql[i] in "'\"-/$" else (-1, True)
        if end < 0:
            i += 1
            continue
        if start < i:
            out.append((True, sql[start:i], True))
        out.append((False, sql[i:end], finished))
        i = start = end
    if start < n:
        out.append((True, sql[start:], True))
    return out


def segments(sql: str) -> list[tuple[bool, str]]:
    """``[(is_code, text), ...]`` covering ``sql``: quoted strings, quoted identifiers, dollar-quoted bodies and
    comments are not code."""
    return [(code, text) for code, text, _ in _scan(sql)]


def code_only(sql: str) -> str:
    """``sql`` with every literal and comment blanked to a space: for keyword tests that must not be fooled."""
    return "".join(text if code else " " for code, text in segments(sql))


def split_statements(text: str) -> tuple[list[str], str]:
    """``(statements, rest)``: every statement ended by a semicolon (without it, stripped; those holding only
    comments dropped), and the unfinished text after the last one (stripped; '' when the text ends a statement).
    An unclosed quote or comment leaves everything from its statement's start in ``rest``."""
    out: list[str] = []
    buf: list[str] = []
    content = unfinished = False
    for code, part, finished in _scan(text):
        if not code:
            buf.append(part)
            content |= not part.startswith(("--", "/*"))
            unfinished = not finished
            continue
        pieces = part.split(";")
        for k, piece in enumerate(pieces):
            buf.append(piece)
            content |= bool(piece.strip())
            if k < len(pieces) - 1:
                if content:
                    out.append("".join(buf).strip())
                buf, content = [], False
    rest = "".join(buf).strip()
    return out, (rest if content or unfinished else "")
