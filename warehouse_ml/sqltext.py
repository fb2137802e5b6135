"""Splitting SQL text into statements, for the shell, scripts and the macro files.

DuckDB's ``extract_statements`` splits only what DuckDB parses, and the front door also takes statements DuckDB
does not (BigQuery ML's ``CREATE MODEL``); a shell must also tell an unfinished statement from a wrong one. So
statements end at a semicolon outside quotes ('...', "...", $$...$$, $tag$...$tag$) and comments (-- and /* */).
"""
from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(text: str) -> tuple[list[str], str]:
    """``(statements, rest)``: every statement ended by a semicolon (without it, stripped, empty ones dropped),
    and the unfinished text after the last one (stripped; '' when the text ends a statement)."""
    out: list[str] = []
    start = i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in ("'", '"'):
            end = text.find(ch, i + 1)
            while end != -1 and end + 1 < n and text[end + 1] == ch:  # a doubled quote is part of the text
                end = text.find(ch, end + 2)
            if end == -1:
                break
            i = end + 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                break
            i = end + 2
        elif ch == "$" and (m := _DOLLAR_TAG.match(text, i)) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find(m.group(0), m.end())
            if end == -1:
                break
            i = end + len(m.group(0))
        elif ch == ";":
            stmt = text[start:i].strip()
            if stmt and not _only_comments(stmt):
                out.append(stmt)
            start = i = i + 1
        else:
            i += 1
    rest = text[start:].strip()
    return out, ("" if _only_comments(rest) else rest)


def _only_comments(text: str) -> bool:
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", "", text, flags=re.DOTALL)
    return not stripped.strip()


def is_complete(text: str) -> bool:
    """Whether the text ends a statement (nothing unfinished after its last semicolon)."""
    return split_statements(text)[1] == ""
