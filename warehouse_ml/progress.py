"""Progress of long steps (training candidates, tuning, forecasting many series, backtest folds), and their
cancellation.

On a terminal a tqdm bar goes to stderr; elsewhere (a server, dbt, a pipe) each step is logged at INFO on the
``warehouse_ml`` logger (``warehouse-ml -v`` shows it). Every step also checks whether the user asked to cancel
(Ctrl-C in the shell), since DuckDB's interrupt cannot stop Python code that a UDF is running. Pure Python:
kernels in ``tasks/`` may use it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("warehouse_ml")
T = TypeVar("T")
_CANCEL = threading.Event()


class Cancelled(Exception):
    """The user asked to stop (Ctrl-C in the shell); nothing half-done is kept."""


def request_cancel() -> None:
    _CANCEL.set()


def clear_cancel() -> None:
    _CANCEL.clear()


def check_cancel() -> None:
    if _CANCEL.is_set():
        raise Cancelled("cancelled by the user (Ctrl-C); nothing was stored")


def _bar_wanted() -> bool:
    return os.environ.get("WML_PROGRESS", "auto") != "off" and sys.stderr.isatty()


def duckdb_bar_only_on_a_terminal(con) -> None:
    """DuckDB draws its own progress bar on stderr even into a file or pipe; keep it to terminals."""
    con.execute(f"SET enable_progress_bar = {'true' if _bar_wanted() else 'false'}")


@contextlib.contextmanager
def counter(desc: str, total: int | None = None, unit: str = "step") -> Iterator[Callable[[], None]]:
    """Yields ``tick``, to call after each unit of work: it advances a bar on a terminal (or logs a line) and
    raises Cancelled when the user asked to stop."""
    check_cancel()
    if _bar_wanted():
        from tqdm import tqdm

        with tqdm(desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
            def tick() -> None:
                bar.update(1)
                check_cancel()

            yield tick
        return
    started, done = time.perf_counter(), 0

    def tick() -> None:
        nonlocal done
        done += 1
        log.info("%s: %d%s %s%s done in %.1fs", desc, done, f"/{total}" if total else "", unit,
                 "" if done == 1 else "s", time.perf_counter() - started)
        check_cancel()

    yield tick


def steps(items: Iterable[T], desc: str, total: int | None = None, unit: str = "step") -> Iterator[T]:
    """Yield ``items``, showing progress as a bar on a terminal or as log lines, and stopping if cancelled."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with counter(desc, total, unit) as tick:
        for item in items:
            yield item
            tick()
