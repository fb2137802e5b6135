"""Files the commands write (the demo database, report pages, charts): never replace one warehouse-ml did not
write itself, unless told to with ``--force``.

Each file carries a mark saying who wrote it: a ``generator`` meta tag in HTML, a ``Software`` text chunk in
PNG, a comment on the demo's ``demo_truth`` table in a DuckDB file.
"""
from __future__ import annotations

import os

from .errors import InvalidArgument

MARK = "warehouse-ml"
HTML_MARK = f'<meta name="generator" content="{MARK}">'
PNG_METADATA = {"Software": MARK}
DEMO_TABLE_COMMENT = f"{MARK} demo"


def _head(path: str, size: int = 65536) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def written_by_us(path: str) -> bool:
    """Whether an existing HTML page or PNG carries warehouse-ml's mark."""
    head = _head(path)
    return HTML_MARK.encode() in head or b"Software\x00" + MARK.encode() in head


def fresh_path(path: str) -> str:
    """The first of ``stem_2.ext``, ``stem_3.ext``, ... that does not exist, to suggest instead of ``path``."""
    stem, ext = os.path.splitext(path)
    n = 2
    while os.path.exists(f"{stem}_{n}{ext}"):
        n += 1
    return f"{stem}_{n}{ext}"


def refuse_to_replace(path: str, option: str, why: str) -> InvalidArgument:
    return InvalidArgument(option, f"{path!r} exists and {why}, so it is left untouched",
                           f"Pass a fresh path, e.g. {option} {fresh_path(path)}, or add --force to replace it")


def check_replaceable(path: str, option: str, force: bool = False) -> None:
    """Raise unless ``path`` is free, was written by warehouse-ml, or ``force`` is set."""
    if force or not os.path.exists(path):
        return
    if os.path.isdir(path):
        raise InvalidArgument(option, f"{path!r} is a directory", "Pass the path of a file, e.g. inside it")
    if not written_by_us(path):
        raise refuse_to_replace(path, option, "was not written by warehouse-ml")
