"""Errors every SQL function raises: each names the argument, the problem and the fix.

DuckDB shows a Python exception raised inside a UDF as
``Invalid Input Error: ... while executing the UDF: ClassName: message``, so the class name is part of what
the analyst reads and each message is written to stand on its own.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest candidate, or a list of what exists when nothing is close."""
    candidates = [str(c) for c in candidates]
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f" Did you mean '{by_lower[close[0]]}'?"
    if not candidates:
        return ""
    shown = ", ".join(f"'{c}'" for c in candidates[:12])
    more = f" and {len(candidates) - 12} more" if len(candidates) > 12 else ""
    return f" It has: {shown}{more}."


class WmlError(Exception):
    """Base class of every error warehouse-ml raises on purpose."""


class InvalidArgument(WmlError):
    def __init__(self, argument: str, problem: str, fix: str):
        self.argument = argument
        super().__init__(f"argument '{argument}': {problem}. {fix}")


class UnknownRelation(WmlError):
    def __init__(self, name: str, candidates: Iterable[str] = ()):
        self.name = name
        super().__init__(
            f"no table or view named '{name}'.{did_you_mean(name, candidates)} "
            "Pass the name of a table or view as a string, e.g. 'orders' or 'main.orders', or a query as text, "
            "e.g. 'SELECT * FROM orders WHERE amount > 0'. TEMP tables, CTEs and DataFrames registered on your "
            "connection are readable when the statement runs through the front door (wml.sql(con, ...), "
            "`warehouse-ml sql`, `warehouse-ml serve`)."
        )


class UnknownColumn(WmlError):
    def __init__(self, relation: str, column: str, candidates: Iterable[str], argument: str | None = None):
        self.relation, self.column = relation, column
        arg = f" (argument '{argument}')" if argument else ""
        super().__init__(f"relation '{relation}' has no column '{column}'{arg}.{did_you_mean(column, candidates)}")


class AmbiguousColumn(WmlError):
    def __init__(self, relation: str, argument: str, role: str, candidates: Iterable[str]):
        names = ", ".join(f"'{c}'" for c in candidates) or "none"
        super().__init__(
            f"cannot tell which column of '{relation}' is the {role} (candidates: {names}). "
            f"Name it with {argument} := 'column'."
        )


class ModelNotFound(WmlError):
    def __init__(self, model: str, candidates: Iterable[str] = (), hint: str | None = None):
        self.model = model
        hint = hint or f"FROM ml_train('{model}', 'my_table', label := 'my_label')"
        super().__init__(f"no model named '{model}'.{did_you_mean(model, candidates)} Train one with: {hint}")


class ReadOnlyDatabase(WmlError):
    def __init__(self, function: str, why: str):
        super().__init__(f"{function.removeprefix('wml_')} changes the model store, and {why}: nothing was trained "
                         "or changed. Connect read-write (for the server: `warehouse-ml serve DB --allow-writes`, "
                         "as a user with the writer role)")


class TrainingFailed(WmlError):
    """The data cannot train the requested model; the previous version stays active."""


class ConcurrentWrite(WmlError):
    """Another writer kept changing the model store; nothing was written, the active version is as it was."""

    def __init__(self, what: str, attempts: int, cause: Exception):
        super().__init__(f"{what} could not be written: other writers changed the model store at the same time "
                         f"{attempts} times in a row ({str(cause).splitlines()[0][:160]}). Nothing was written and the "
                         "active version is unchanged; run the statement again")


class CorruptModel(WmlError):
    """A stored artifact cannot be read (damaged or truncated bytes); nothing of it was executed."""

    def __init__(self, model: str, version: int, fmt: str, cause: Exception, way_out: str):
        self.model, self.version = model, version
        detail = f"{type(cause).__name__}: {str(cause).splitlines()[0][:160]}" if str(cause) else type(cause).__name__
        super().__init__(f"the stored {fmt} artifact of model '{model}' version {version} cannot be read ({detail}): "
                         f"it was damaged or truncated after it was written. {way_out}")


class UnsafeModel(WmlError):
    """A stored artifact holds types outside the allowlist; it is refused instead of loaded."""


class MissingDependency(WmlError):
    def __init__(self, package: str, feature: str, install: str):
        super().__init__(f"{feature} needs {package}, which is not importable. Install it with: {install}")
