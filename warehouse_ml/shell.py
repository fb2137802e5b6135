"""The ``warehouse-ml sql`` shell: statements through the front door, shown the way DuckDB's own CLI shows them.

Results are drawn by DuckDB (``.mode duckbox``, with types and full precision) or written as csv, tabs,
markdown, line, list, json or jsonlines from DuckDB's own text form of each value. Dot commands follow DuckDB's
CLI (``.tables``, ``.schema``, ``.timer``, ``.read``, ``.mode``, ``.maxrows``, ``.help``, ``.quit``); psql's
``\\dt``, ``\\d``, ``\\l``, ``\\dn``, ``\\df``, ``\\q`` are mapped to them. A statement runs in a worker thread so
that Ctrl-C can cancel it: the first asks DuckDB to interrupt the query and warehouse-ml's long steps to stop;
a second one quits the shell.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import signal
import sys
import threading
import time

import duckdb

from . import progress
from .errors import WmlError
from .sqltext import split_statements

MODES = ("duckbox", "csv", "tabs", "markdown", "line", "list", "json", "jsonlines")
HELP = """\
.help                 this list
.tables [PATTERN]     tables and views (LIKE pattern)
.schema [NAME]        CREATE statements of tables and views
.mode [MODE]          how results are shown: duckbox (default), csv, tabs, markdown, line, list, json, jsonlines
.maxrows N            rows duckbox shows before it elides the middle (default 40; 0 shows all)
.timer on|off         print each statement's run time
.read FILE            run the statements (and dot commands) in FILE
.quit / .exit         leave (as does Ctrl-D)
psql: \\dt \\d [NAME] \\l \\dn \\df \\q \\? work as .tables, DESCRIBE, SHOW DATABASES, schemas, functions, .quit, .help"""


class ShellError(Exception):
    """A dot command or statement that failed; the shell prints it and goes on (a script stops)."""


def render(rel: duckdb.DuckDBPyRelation, mode: str = "duckbox", max_rows: int = 40, max_width: int | None = None) -> str:
    """A materialized relation as text in one of MODES: DuckDB draws duckbox; the rest use its VARCHAR text."""
    if mode == "duckbox":
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            rel.show(max_rows=max_rows or 10**9, max_width=max_width or 10**6)
        return shown.getvalue().rstrip("\n")
    names = rel.columns
    if mode in ("json", "jsonlines"):
        rows = rel.query("__wml_shown", "SELECT CAST(to_json(__wml_shown) AS VARCHAR) FROM __wml_shown").fetchall()
        items = [r[0] for r in rows]
        return "\n".join(items) if mode == "jsonlines" else "[" + ",\n".join(items) + "]"
    rows = rel.project(", ".join(f"CAST({_q(n)} AS VARCHAR)" for n in names)).fetchall()
    cells = [["NULL" if v is None else v for v in r] for r in rows]
    if mode in ("csv", "tabs"):
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="," if mode == "csv" else "\t", lineterminator="\n")
        writer.writerow(names)
        writer.writerows([["" if v is None else v for v in r] for r in rows])
        return buf.getvalue().rstrip("\n")
    if mode == "markdown":
        esc = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        lines = ["| " + " | ".join(esc(n) for n in names) + " |", "|" + "|".join("---" for _ in names) + "|"]
        return "\n".join(lines + ["| " + " | ".join(esc(v) for v in r) + " |" for r in cells])
    if mode == "line":
        width = max((len(n) for n in names), default=0)
        return "\n\n".join("\n".join(f"{n.rjust(width)} = {v}" for n, v in zip(names, r)) for r in cells)
    if mode == "list":
        return "\n".join(["|".join(names)] + ["|".join(str(v) for v in r) for r in cells])
    raise ShellError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Shell:
    """A SQL shell on a connection with warehouse-ml installed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, out=None, err=None, mode: str = "duckbox"):
        self.con = con
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.mode = mode
        self.max_rows = 40
        self.timer = False
        self.done = False
        self.pending = ""  # SQL typed so far whose statement has not ended

    # -- statements -------------------------------------------------------------------------------------------
    def execute(self, statement: str) -> None:
        """Run one statement through the front door and print its result."""
        from .frontdoor import relation

        started = time.perf_counter()
        try:
            text = self._cancellable(lambda: self._run_and_render(relation, statement))
        except (duckdb.Error, WmlError) as e:
            raise ShellError(str(e)) from None
        finally:
            if self.timer:
                print(f"Run Time (s): real {time.perf_counter() - started:.3f}", file=self.out)
        if text:
            print(text, file=self.out, flush=True)

    def _run_and_render(self, relation, statement: str) -> str:
        rel = relation(self.con, statement)
        if rel is None:
            return ""
        rows = rel.materialize()  # runs once; rendering reads the held rows
        width = shutil.get_terminal_size().columns if self.out.isatty() else None
        return render(rows, self.mode, self.max_rows, width)

    def _cancellable(self, work):
        """Run ``work`` in a thread; Ctrl-C interrupts DuckDB and asks long warehouse-ml steps to stop."""
        result: dict = {}
        finished = threading.Event()  # not Thread.join: a KeyboardInterrupt inside join() can leave is_alive() wrong

        def target():
            try:
                result["value"] = work()
            except BaseException as e:  # handed to the main thread
                result["error"] = e
            finally:
                finished.set()

        progress.clear_cancel()
        threading.Thread(target=target, name="wml-statement", daemon=True).start()
        interrupts = 0
        while not finished.is_set():
            try:
                finished.wait(0.1)
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts > 1:
                    print("\nQuitting.", file=self.err, flush=True)
                    os._exit(130)
                print("\nCancelling (Ctrl-C again quits) ...", file=self.err, flush=True)
                progress.request_cancel()
                self.con.interrupt()
        progress.clear_cancel()
        if "error" in result:
            error = result["error"]
            if isinstance(error, progress.Cancelled) or interrupts:
                raise ShellError("cancelled (Ctrl-C)") from None
            raise error
        return result.get("value")

    # -- scripts and lines ----------------------------------------------------------------------------------
    def feed(self, line: str, stop_on_error: bool = False) -> bool:
        """One line of input: a dot command (a line of its own, or what follows the last statement on a line),
        or SQL, whose statements run as soon as their semicolon arrives. Returns False if anything failed."""
        if not self.pending.strip() and line.strip()[:1] in (".", "\\"):
            return self._guarded(self.command, line.strip())
        statements, rest = split_statements(self.pending + line + "\n")
        self.pending, ok = "", True
        for stmt in statements:
            ok = self._guarded(self.execute, stmt) and ok
            if (not ok and stop_on_error) or self.done:
                return ok
        if rest[:1] in (".", "\\") and "\n" not in rest:
            return self._guarded(self.command, rest) and ok
        self.pending = rest + "\n" if rest else ""
        return ok

    def run_script(self, text: str, stop_on_error: bool = True) -> bool:
        """Run statements and dot commands; the last statement may lack its semicolon. False if any failed."""
        saved, self.pending, ok = self.pending, "", True
        try:
            for line in text.splitlines():
                ok = self.feed(line, stop_on_error) and ok
                if (not ok and stop_on_error) or self.done:
                    return ok
            if self.pending.strip():
                ok = self._guarded(self.execute, self.pending.strip()) and ok
            return ok
        finally:
            self.pending = saved

    def _guarded(self, action, arg: str) -> bool:
        try:
            action(arg)
            return True
        except ShellError as e:
            print(f"Error: {e}", file=self.err, flush=True)
            return False

    def interactive(self, banner: str) -> int:
        """The prompt loop, with readline history; Ctrl-C at the prompt clears the line, Ctrl-D quits."""
        _load_history()
        print(banner, file=self.out)
        while not self.done:
            try:
                line = input("wml> " if not self.pending else "...> ")
            except EOFError:
                print(file=self.out)
                break
            except KeyboardInterrupt:
                print(file=self.out)
                self.pending = ""
                continue
            self.feed(line)
        _save_history()
        return 0

    # -- dot commands ---------------------------------------------------------------------------------------
    def command(self, line: str) -> None:
        if line.startswith("\\"):
            line = _psql_command(line)
            if not line.startswith("."):
                return self.execute(line)
        word, _, arg = line.partition(" ")
        arg = arg.strip()
        handler = getattr(self, "_cmd_" + word[1:].lower(), None)
        if handler is None:
            raise ShellError(f"unknown command {word}. Type .help for the commands")
        handler(arg)

    def _cmd_help(self, arg: str) -> None:
        print(HELP, file=self.out)

    def _cmd_quit(self, arg: str) -> None:
        self.done = True

    _cmd_exit = _cmd_quit

    def _cmd_mode(self, arg: str) -> None:
        if not arg:
            print(f"current output mode: {self.mode}", file=self.out)
        elif arg.lower() in MODES:
            self.mode = arg.lower()
        else:
            raise ShellError(f"unknown mode {arg!r}: use one of {', '.join(MODES)}")

    def _cmd_maxrows(self, arg: str) -> None:
        if not arg.isdigit():
            raise ShellError(f".maxrows takes a number of rows, got {arg!r}: e.g. .maxrows 100 (0 shows all)")
        self.max_rows = int(arg)

    def _cmd_timer(self, arg: str) -> None:
        if arg.lower() not in ("on", "off"):
            raise ShellError(f".timer takes on or off, got {arg!r}")
        self.timer = arg.lower() == "on"

    def _cmd_read(self, arg: str) -> None:
        path = os.path.expanduser(arg.strip("'\""))
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ShellError(f".read {arg}: {e.strerror or e}") from None
        if not self.run_script(text):
            raise ShellError(f".read {arg}: stopped at the first error")

    def _user_relations(self, column: str, match: str, arg: str) -> list[tuple]:
        """``column`` (name or sql) of the user's tables and views, without the store and scratch copies; every
        one when ``arg`` is empty, else those where ``match`` holds for $1 = arg."""
        return self.con.execute(
            f"SELECT {column} FROM (SELECT table_name AS name, sql, schema_name AS sch, database_name AS db FROM duckdb_tables() "
            "UNION ALL SELECT view_name, sql, schema_name, database_name FROM duckdb_views() WHERE NOT internal) "
            f"WHERE sch <> 'wml' AND db <> 'wml_scratch' AND ($1 IS NULL OR {match}) ORDER BY name",
            [arg or None]).fetchall()

    def _cmd_tables(self, arg: str) -> None:
        rows = self._user_relations("name", "name LIKE $1", arg)
        names = [r[0] for r in rows]
        if names:
            width = max(len(n) for n in names) + 2
            per_line = max(1, (shutil.get_terminal_size().columns if self.out.isatty() else 80) // width)
            for i in range(0, len(names), per_line):
                print("".join(n.ljust(width) for n in names[i:i + per_line]).rstrip(), file=self.out)

    def _cmd_schema(self, arg: str) -> None:
        rows = self._user_relations("sql", "lower(name) = lower($1)", arg)
        if arg and not rows:
            raise ShellError(f"no table or view named {arg!r}. Type .tables for the list")
        for (sql,) in rows:
            print(sql.rstrip().rstrip(";") + ";", file=self.out)

    def _cmd_describe(self, arg: str) -> None:
        if not arg:
            self._cmd_tables("")
        else:
            self.execute(f"DESCRIBE {arg}")


def _psql_command(line: str) -> str:
    """psql's backslash commands as the shell's dot commands."""
    word, _, arg = line.partition(" ")
    mapped = {"\\dt": ".tables", "\\dv": ".tables", "\\d": ".describe", "\\d+": ".describe", "\\q": ".quit",
              "\\?": ".help", "\\i": ".read"}
    sql = {"\\l": "SHOW DATABASES", "\\dn": "SELECT DISTINCT schema_name FROM duckdb_schemas() ORDER BY 1",
           "\\df": "SELECT DISTINCT function_name, function_type FROM duckdb_functions() "
                   "WHERE function_type LIKE '%macro%' AND NOT internal ORDER BY 1"}
    if word in mapped:
        return f"{mapped[word]} {arg}".strip()
    if word in sql:
        return sql[word]
    raise ShellError(f"unknown command {word}: this shell takes DuckDB's dot commands (.help lists them) and "
                     "psql's \\dt, \\d, \\l, \\dn, \\df, \\q")


def _history_file() -> str:
    return os.environ.get("WML_HISTORY") or os.path.join(os.path.expanduser("~"), ".warehouse_ml_history")


def _load_history() -> None:
    try:
        import readline
    except ImportError:  # no readline (e.g. Windows): the prompt still works, without history
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(_history_file())
    readline.set_history_length(2000)


def _save_history() -> None:
    try:
        import readline
    except ImportError:
        return
    with contextlib.suppress(OSError):
        readline.write_history_file(_history_file())


def install_interrupt_handler() -> None:
    """Ctrl-C raises KeyboardInterrupt in the main thread (the default), also where a parent process changed it."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
