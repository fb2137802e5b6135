"""BigQuery SQL as text: literals, quotes, parenthesised arguments, model names and option values, shared by
the BigQuery ML and differential privacy statements (``bigquery_ml``, ``bigquery_dp``), and sqlglot's
BigQuery-to-DuckDB transpilation."""
from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from ..errors import InvalidArgument

ML_CALL = re.compile(r"\bML\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.I)
LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*\s*", re.S)


def literal(value) -> str:
    """A Python value as a SQL literal (strings quoted and escaped)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def transpile(sql: str) -> str:
    """BigQuery SQL to DuckDB SQL (one statement)."""
    try:
        return sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]
    except sqlglot.errors.ParseError as e:
        raise InvalidArgument("query", f"could not parse the BigQuery SQL: {str(e).splitlines()[0]}",
                              "Check the statement's syntax; BigQuery ML statements are translated with sqlglot") from None


def quote_state(sql: str) -> list[bool]:
    inside, quote, i = [False] * len(sql), None, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            inside[i] = True
            if ch == "\\" and quote in "'\"":
                if i + 1 < len(sql):
                    inside[i + 1] = True
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            inside[i] = True
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = len(sql) if j < 0 else j
            for k in range(i, j):
                inside[k] = True
            i = j
            continue
        i += 1
    return inside


def outside_quotes(sql: str, pos: int) -> bool:
    return not quote_state(sql)[pos]


def close_paren(sql: str, open_pos: int, inside: list[bool]) -> int:
    depth = 0
    for i in range(open_pos, len(sql)):
        if inside[i]:
            continue
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise InvalidArgument("query", "an ML.* call has no closing parenthesis", "Balance the parentheses")


def split_args(text: str) -> list[str]:
    inside, depth, start, out = quote_state(text), 0, 0, []
    for i, ch in enumerate(text):
        if inside[i]:
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def model_name(ref: str) -> str:
    """`dataset.model` / dataset.model / project.dataset.model as one name: 'dataset.model'."""
    try:
        table = exp.to_table(ref.strip(), dialect="bigquery")
    except (sqlglot.errors.ParseError, ValueError):
        table = None
    if table is None or not table.name:
        raise InvalidArgument("MODEL", f"could not read the model name {ref!r}", "Write MODEL `dataset.model` or MODEL m")
    return ".".join(p.name for p in table.parts)


def option_value(node):
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -option_value(node.this)
    if isinstance(node, exp.Array):
        return [option_value(e) for e in node.expressions]
    if isinstance(node, (exp.Column, exp.Var, exp.Identifier)):
        return node.name
    raise InvalidArgument("OPTIONS", f"cannot read the option value {node.sql(dialect='bigquery')}",
                          "Use a string, number, TRUE/FALSE or an array of strings")
