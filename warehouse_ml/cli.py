"""The ``warehouse-ml`` command: the demo, a SQL shell through the front door, and the integrations."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import duckdb


def format_result(cursor, max_rows: int = 50) -> str:
    """A plain-text table of a DuckDB result, for the shell and the demo."""
    if cursor.description is None:
        return "OK"
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchmany(max_rows + 1)
    more = len(rows) > max_rows
    rows = rows[:max_rows]
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [min(max([len(n)] + [len(r[i]) for r in cells]), 60) for i, n in enumerate(names)]
    line = lambda vals: " | ".join(v[:w].ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    out = [line(names), "-+-".join("-" * w for w in widths)] + [line(r) for r in cells]
    if more:
        out.append(f"... (more than {max_rows} rows)")
    return "\n".join(out)


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_cell(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_cell(x) for x in v) + "]"
    return "NULL" if v is None else str(v)


def split_sql(text: str) -> list[str]:
    """Split a script into statements on semicolons outside quotes."""
    out, buf, quote = [], [], None
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in ("'", '"'):
            quote = ch
        if ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
            continue
        buf.append(ch)
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out


def cmd_sql(args) -> int:
    import warehouse_ml as wml

    con = wml.connect(args.db, read_only=args.read_only)

    def run(stmt: str) -> None:
        t0 = time.perf_counter()
        try:
            result = wml.sql(con, stmt)
            print(format_result(result))
        except (duckdb.Error, wml.WmlError) as e:
            print(f"Error: {e}", file=sys.stderr)
            raise
        finally:
            if args.timer:
                print(f"({time.perf_counter() - t0:.2f}s)", file=sys.stderr)

    if args.command:
        try:
            for stmt in split_sql(args.command):
                run(stmt)
        except (duckdb.Error, Exception):
            return 1
        return 0
    print(f"warehouse-ml SQL shell on {args.db}. End statements with ';'. Ctrl-D quits.")
    buf = ""
    while True:
        try:
            line = input("wml> " if not buf else "...> ")
        except EOFError:
            print()
            return 0
        buf += line + "\n"
        if buf.rstrip().endswith(";"):
            for stmt in split_sql(buf):
                try:
                    run(stmt)
                except Exception:  # the shell keeps going after an error, which it has printed
                    pass
            buf = ""


def cmd_demo(args) -> int:
    from .demo.run import run_demo

    run_demo(args.db, users=args.users, seed=args.seed)
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
        path = write_report(args.db, args.out, forecast_items=args.forecast_items, horizon=args.horizon)
    except (WmlError, duckdb.Error, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="warehouse-ml", description="Machine learning inside DuckDB, from SQL.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress of long steps")
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="build a realistic shop in a DuckDB file and run the whole loop in SQL")
    d.add_argument("--db", default="shop.duckdb", help="DuckDB file to create (default: shop.duckdb)")
    d.add_argument("--users", type=int, default=5000, help="number of shop users (default: 5000)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("sql", help="a SQL shell on a DuckDB file with every function installed")
    s.add_argument("db")
    s.add_argument("-c", "--command", help="run these statements and exit")
    s.add_argument("--read-only", action="store_true")
    s.add_argument("--timer", action="store_true", help="print each statement's time")
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
    f.set_defaults(func=cmd_plot_forecast)
    return p


def cmd_plot_forecast(args) -> int:
    import warehouse_ml as wml
    from .functions.forecast import plot_forecast

    con = wml.connect(args.db, read_only=True)
    out = args.out or f"forecast_{args.item}.png"
    try:
        plot_forecast(con, args.relation, args.item, args.horizon, out, item_col=args.item_col, date=args.date,
                      value=args.value, method=args.method, level=args.level)
    except (duckdb.Error, wml.WmlError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
