"""The ``warehouse-ml`` command: the demo, a SQL shell through the front door, and the integrations."""
from __future__ import annotations

import argparse
import logging
import os
import sys

import duckdb

from .shell import MODES


def cmd_sql(args) -> int:
    import warehouse_ml as wml

    from .progress import duckdb_bar_only_on_a_terminal
    from .shell import Shell, install_interrupt_handler

    con = wml.connect(args.db, read_only=args.read_only)
    duckdb_bar_only_on_a_terminal(con)
    shell = Shell(con, mode=args.mode)
    shell.timer = args.timer
    install_interrupt_handler()
    try:
        if args.command is not None:
            return 0 if shell.run_script(args.command) else 1
        return shell.interactive(f"warehouse-ml SQL shell on {args.db} (DuckDB {duckdb.__version__}). "
                                 "End statements with ';'. .help lists commands; Ctrl-C cancels; Ctrl-D quits.")
    finally:
        con.close()


def cmd_demo(args) -> int:
    from .demo.run import run_demo

    from .errors import WmlError

    try:
        run_demo(args.db, users=args.users, seed=args.seed, force=args.force)
    except WmlError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_serve(args) -> int:
    from .integrations.server import Limits, ServerError, serve

    limits = Limits(max_connections=args.max_connections, startup_timeout=args.auth_timeout,
                    idle_timeout=args.idle_timeout, statement_timeout=args.statement_timeout)
    try:
        serve(args.db, host=args.host, port=args.port, allow_writes=args.allow_writes,
              password=args.password if args.password is not None else os.environ.get("WML_SERVER_PASSWORD"),
              users_file=args.users, tls_cert=args.tls_cert, tls_key=args.tls_key, limits=limits)
    except ServerError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_serve_user(args) -> int:
    """Add or replace a user in a server users file; the password is read from WML_SERVER_PASSWORD or asked for."""
    import getpass

    from .integrations.pgwire.auth import write_user

    password = os.environ.get("WML_SERVER_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
    try:
        write_user(args.file, args.name, args.role, password)
    except (ValueError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print(f"{args.file}: {args.name} ({args.role}) saved as a SCRAM-SHA-256 verifier; the password itself is not stored")
    return 0


def cmd_report(args) -> int:
    from .errors import WmlError
    from .integrations.report import write_report

    try:
        path = write_report(args.db, args.out, forecast_items=args.forecast_items, horizon=args.horizon,
                            force=args.force)
    except (WmlError, duckdb.Error, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="warehouse-ml", description="Machine learning inside DuckDB, from SQL.")
    _add_verbose(p)
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="build a realistic shop in a DuckDB file and run the whole loop in SQL")
    d.add_argument("--db", default="shop.duckdb", help="DuckDB file to create (default: shop.duckdb)")
    d.add_argument("--users", type=int, default=5000, help="number of shop users (default: 5000)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--force", action="store_true",
                   help="replace --db even if the demo did not build it (otherwise such a file is left untouched)")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("sql", help="a SQL shell on a DuckDB file with every function installed")
    s.add_argument("db")
    s.add_argument("-c", "--command", help="run these statements and exit")
    s.add_argument("--read-only", action="store_true")
    s.add_argument("--timer", action="store_true", help="print each statement's time (as .timer on)")
    s.add_argument("--mode", default="duckbox", choices=MODES, help="how results are shown (as .mode; default duckbox)")
    s.set_defaults(func=cmd_sql)

    v = sub.add_parser("serve", help="serve a DuckDB file over the PostgreSQL protocol (psql, BI tools) on 127.0.0.1")
    v.add_argument("db")
    v.add_argument("--port", type=int, default=5433, help="TCP port (default: 5433)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; others need --password)")
    v.add_argument("--allow-writes", action="store_true", help="open the file read-write and permit training")
    v.add_argument("--password", default=None,
                   help="require this password from clients, any user name (or set WML_SERVER_PASSWORD)")
    v.add_argument("--users", default=None, metavar="FILE",
                   help="users and roles (reader/writer) with hashed passwords, written by `warehouse-ml serve-user`")
    v.add_argument("--tls-cert", default=None, help="PEM certificate: clients may (other machines must) use TLS")
    v.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    v.add_argument("--max-connections", type=int, default=64, help="sessions at once (default: 64)")
    v.add_argument("--auth-timeout", type=float, default=10.0,
                   help="seconds a client has to start up and authenticate (default: 10)")
    v.add_argument("--idle-timeout", type=float, default=3600.0,
                   help="seconds a client may stay silent before it is disconnected, 0 for none (default: 3600)")
    v.add_argument("--statement-timeout", type=float, default=3600.0,
                   help="seconds a statement may run, 0 for none (default: 3600; clients may SET a lower statement_timeout)")
    v.set_defaults(func=cmd_serve)

    u = sub.add_parser("serve-user", help="add a user (reader or writer) to a users file for `serve --users`")
    u.add_argument("file")
    u.add_argument("name")
    u.add_argument("--role", choices=["reader", "writer"], default="reader",
                   help="reader: queries only; writer: may train and write when the server runs --allow-writes")
    u.set_defaults(func=cmd_serve_user)

    r = sub.add_parser("report", help="write one self-contained HTML page of charts for the models in a DuckDB file")
    r.add_argument("db")
    r.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    r.add_argument("--forecast-items", type=int, default=3, help="series to forecast and plot (default: 3)")
    r.add_argument("--horizon", type=int, default=28, help="forecast horizon in periods (default: 28)")
    r.add_argument("--force", action="store_true", help="replace --out even if warehouse-ml did not write it")
    r.set_defaults(func=cmd_report)
    f = sub.add_parser("plot-forecast", help="write a PNG of an item's history, forecast and band")
    f.add_argument("db")
    f.add_argument("--relation", default="daily_sales", help="table of sales (default: daily_sales)")
    f.add_argument("--item", required=True, help="the item key, e.g. SKU-0001")
    f.add_argument("--horizon", type=int, default=28)
    f.add_argument("--item-col", dest="item_col")
    f.add_argument("--date")
    f.add_argument("--value")
    f.add_argument("--method", default="auto")
    f.add_argument("--level", type=float, default=0.95)
    f.add_argument("--out", help="PNG path (default: forecast_<item>.png)")
    f.add_argument("--force", action="store_true", help="replace --out even if warehouse-ml did not write it")
    f.set_defaults(func=cmd_plot_forecast)
    for command in sub.choices.values():  # -v before or after the subcommand
        _add_verbose(command)
    return p


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand that did not get -v leaves the value the main parser set
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress of long steps")


def cmd_plot_forecast(args) -> int:
    import warehouse_ml as wml
    from .functions.forecast_plot import plot_forecast
    from .outputs import check_replaceable

    out = args.out or f"forecast_{args.item}.png"
    try:
        check_replaceable(out, "--out", args.force)
        con = wml.connect(args.db, read_only=True)
        plot_forecast(con, args.relation, args.item, args.horizon, out, item_col=args.item_col, date=args.date,
                      value=args.value, method=args.method, level=args.level)
    except (duckdb.Error, wml.WmlError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except duckdb.IOException as e:  # e.g. another process holds the file's write lock: one line, no traceback
        if verbose:
            raise
        print(f"Error: {_one_line_io_error(getattr(args, 'db', None), e)}", file=sys.stderr)
        return 2


def _one_line_io_error(db: str | None, error: duckdb.IOException) -> str:
    text = " ".join(str(error).split())
    if "lock" in text.lower():
        holder = text.split("(PID", 1)[1].split(")", 1)[0].strip() if "(PID" in text else None
        who = f"process {holder}" if holder else "another process"
        return (f"cannot open {db!r}: {who} has it open for writing. Close that process, or work on a copy "
                f"(cp {db} copy.duckdb)")
    return f"cannot open {db!r}: {text}"


if __name__ == "__main__":
    sys.exit(main())
