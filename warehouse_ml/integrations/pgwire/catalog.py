"""The PostgreSQL catalog that BI tools, drivers and psql read, on top of DuckDB's own ``pg_catalog``.

DuckDB ships ``pg_catalog`` views with PostgreSQL's type OIDs; what clients also need is added per session as
TEMP macros and views (``version()``, ``pg_get_userbyid``, ``pg_encoding_to_char``, a ``pg_database`` with the
columns psql lists, ``pg_cursors`` of this session, empty ``pg_inherits``/``pg_policy``/... tables), and a few
PostgreSQL spellings DuckDB does not parse are rewritten in the statement's code (never in its literals):
``OPERATOR(pg_catalog.~)``, ``COLLATE pg_catalog.default``, ``'name'::regclass`` and ``pg_catalog.f(...)``.
"""
from __future__ import annotations

import re

import duckdb

from ...sqltext import segments

PG_VERSION = "14.0"

# objects added per session; references to pg_catalog.<name> are rewritten to the TEMP object
_MACROS = {
    "parse_ident_last": "(name) AS lower(trim(string_split(name, '.')[-1], '\"'))",
    "version": "() AS 'PostgreSQL {pg} on x86_64-pc-linux-gnu (warehouse-ml on DuckDB {duck}), 64-bit'",
    "pg_get_userbyid": "(oid) AS '{user}'",
    "pg_encoding_to_char": "(enc) AS 'UTF8'",
    "pg_char_to_encoding": "(name) AS 6",
    "pg_backend_pid": "() AS 0",
    "pg_is_in_recovery": "() AS false",
    "txid_current": "() AS 0",
    "pg_get_indexdef": "(idx) AS NULL::VARCHAR, (idx, col, pretty) AS NULL::VARCHAR",
    "pg_get_expr": "(e, r) AS NULL::VARCHAR, (e, r, pretty) AS NULL::VARCHAR",
    "pg_get_function_result": "(f) AS NULL::VARCHAR",
    "pg_get_function_arguments": "(f) AS NULL::VARCHAR",
    "pg_get_function_identity_arguments": "(f) AS NULL::VARCHAR",
    "pg_get_partkeydef": "(r) AS NULL::VARCHAR",
    "pg_get_statisticsobjdef_columns": "(r) AS NULL::VARCHAR",
    "pg_get_triggerdef": "(t) AS NULL::VARCHAR, (t, pretty) AS NULL::VARCHAR",
    "pg_get_ruledef": "(r) AS NULL::VARCHAR, (r, pretty) AS NULL::VARCHAR",
    "pg_get_viewdef": "(v) AS NULL::VARCHAR, (v, pretty) AS NULL::VARCHAR",
    "pg_get_constraintdef": "(c) AS NULL::VARCHAR, (c, pretty) AS NULL::VARCHAR",
    "pg_get_serial_sequence": "(t, c) AS NULL::VARCHAR",
    "pg_relation_size": "(r) AS 0::BIGINT, (r, fork) AS 0::BIGINT",
    "pg_total_relation_size": "(r) AS 0::BIGINT",
    "pg_table_size": "(r) AS 0::BIGINT",
    "pg_database_size": "(d) AS 0::BIGINT",
    "pg_tablespace_location": "(t) AS ''",
    "pg_get_keywords": "() AS TABLE SELECT NULL::VARCHAR AS word, NULL::VARCHAR AS catcode, NULL::VARCHAR AS catdesc WHERE false",
    "quote_ident": "(s) AS CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_]*') THEN s ELSE '\"' || replace(s, '\"', '\"\"') || '\"' END",
    "pg_relation_is_publishable": "(r) AS false",
    # visible = in a schema on the search path (DuckDB's own says true for every table, so wml.* would show as main's)
    # (aliases inside macros are unusual names: the caller's argument, e.g. c.oid, is pasted in as written)
    "pg_table_is_visible": ("(rel) AS coalesce((SELECT bool_or(list_contains(current_schemas(true), wml_n.nspname)) "
                            "FROM pg_catalog.pg_class wml_c JOIN pg_catalog.pg_namespace wml_n ON wml_n.oid = "
                            "wml_c.relnamespace WHERE wml_c.oid = rel), true)"),
    "json_build_object": ", ".join(
        "(" + ", ".join(f"a{i}" for i in range(n)) + ") AS json_object(" + ", ".join(f"a{i}::VARCHAR" if i % 2 == 0 else f"a{i}" for i in range(n)) + ")"
        for n in range(2, 17, 2)),
    # PostgreSQL's names for the types (SQLAlchemy and psql read them), with numeric's precision and scale
    "format_type": ("(t, m) AS CASE t WHEN 16 THEN 'boolean' WHEN 17 THEN 'bytea' WHEN 20 THEN 'bigint' "
                    "WHEN 21 THEN 'smallint' WHEN 23 THEN 'integer' WHEN 25 THEN 'text' WHEN 114 THEN 'json' "
                    "WHEN 700 THEN 'real' WHEN 701 THEN 'double precision' WHEN 1043 THEN 'character varying' "
                    "WHEN 1082 THEN 'date' WHEN 1083 THEN 'time without time zone' "
                    "WHEN 1114 THEN 'timestamp without time zone' WHEN 1184 THEN 'timestamp with time zone' "
                    "WHEN 1186 THEN 'interval' WHEN 2950 THEN 'uuid' "
                    "WHEN 1700 THEN 'numeric' || CASE WHEN m > 4 THEN '(' || ((m - 4) // 65536) || ',' || ((m - 4) % 65536) || ')' ELSE '' END "
                    "ELSE pg_catalog.format_type(t, m) END"),
    "pg_get_statisticsobjdef": "(s) AS NULL::VARCHAR",
    "wml_regclass": "(name) AS (SELECT min(oid) FROM pg_catalog.pg_class WHERE relname = parse_ident_last(name))",
    "wml_regtype": "(name) AS (SELECT min(oid) FROM pg_catalog.pg_type WHERE typname = parse_ident_last(name))",
    "to_regtype": "(name) AS wml_regtype(name)",
    "wml_current_setting": ("(wanted) AS coalesce((SELECT setting FROM wml_session_settings wml_s WHERE wml_s.name = lower(wanted)), "
                            "(SELECT value FROM duckdb_settings() wml_d WHERE lower(wml_d.name) = lower(wanted)))"),
    "to_regclass": "(name) AS wml_regclass(name)",
}
# DuckDB's own pg_catalog has these, and its versions win over a TEMP macro of the same name: ours are created as
# wml_<name> and calls are renamed
_OVERRIDDEN = ("pg_table_is_visible", "format_type", "pg_get_expr", "pg_get_constraintdef", "pg_get_viewdef")
_EMPTY = {  # catalog tables that DuckDB lacks and that describe things DuckDB has none of
    "pg_inherits": "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN",
    "pg_policy": "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR",
    "pg_statistic_ext": "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, stxstattarget INTEGER, stxkeys INTEGER[], stxkind VARCHAR[], stxexprs VARCHAR",
    "pg_publication": "oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN",
    "pg_publication_rel": "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs INTEGER[]",
    "pg_publication_namespace": "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT",
    "pg_trigger": "oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN, tgconstraint BIGINT",
    "pg_rewrite": "oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, ev_enabled VARCHAR, is_instead BOOLEAN",
    "pg_partitioned_table": "partrelid BIGINT, partstrat VARCHAR, partnatts INTEGER",
    "pg_foreign_table": "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]",
    "pg_extension": "oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, extversion VARCHAR",
    "pg_event_trigger": "oid BIGINT, evtname VARCHAR, evtevent VARCHAR, evtowner BIGINT, evtfoid BIGINT, evtenabled VARCHAR",
    "pg_matviews": "schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, tablespace VARCHAR, hasindexes BOOLEAN, ispopulated BOOLEAN, definition VARCHAR",
    "pg_language": "oid BIGINT, lanname VARCHAR, lanowner BIGINT, lanispl BOOLEAN",
    "pg_locks": "locktype VARCHAR, database BIGINT, relation BIGINT, pid INTEGER, mode VARCHAR, granted BOOLEAN",
    "pg_auth_members": "roleid BIGINT, member BIGINT, grantor BIGINT, admin_option BOOLEAN",
    "pg_opclass": "oid BIGINT, opcname VARCHAR, opcnamespace BIGINT, opcdefault BOOLEAN",
    "pg_operator": "oid BIGINT, oprname VARCHAR, oprnamespace BIGINT, oprleft BIGINT, oprright BIGINT, oprresult BIGINT, oprcode VARCHAR",
    "pg_aggregate": "aggfnoid BIGINT, aggkind VARCHAR",
    "pg_range": "rngtypid BIGINT, rngsubtype BIGINT",
    "pg_cast": "oid BIGINT, castsource BIGINT, casttarget BIGINT, castfunc BIGINT, castcontext VARCHAR, castmethod VARCHAR",
}
_VIEWS = {
    # psql \d reads relforcerowsecurity, JDBC reads relkind/relnamespace: DuckDB's pg_class plus what it lacks
    "pg_class": ("SELECT * REPLACE (NULL::VARCHAR[] AS reloptions, NULL::VARCHAR[] AS relacl), false AS relforcerowsecurity "
                 "FROM pg_catalog.pg_class"),
    "pg_database": ("SELECT oid, datname, 10::BIGINT AS datdba, 6 AS encoding, 'c' AS datlocprovider, 'C' AS datcollate, "
                    "'C' AS datctype, NULL::VARCHAR AS daticulocale, NULL::VARCHAR AS daticurules, "
                    "NULL::VARCHAR AS datcollversion, false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, "
                    "NULL::VARCHAR[] AS datacl FROM pg_catalog.pg_database WHERE datname NOT IN ('system', 'temp')"),
    # PostgreSQL encodes numeric(p, s) as ((p << 16) | s) + 4, DuckDB as p * 1000 + s: JDBC and SQLAlchemy decode it
    "pg_attribute": ("SELECT * REPLACE (CASE WHEN atttypid = 1700 AND atttypmod > 0 THEN (atttypmod // 1000) * 65536 "
                     "+ atttypmod % 1000 + 4 ELSE atttypmod END AS atttypmod) FROM pg_catalog.pg_attribute"),
    "pg_collation": ("SELECT oid, collname, 11::BIGINT AS collnamespace, 10::BIGINT AS collowner, 'c' AS collprovider, "
                     "true AS collisdeterministic, -1 AS collencoding, 'C' AS collcollate, 'C' AS collctype "
                     "FROM pg_catalog.pg_collation"),
    "pg_roles": ("SELECT 10::BIGINT AS oid, '{user}' AS rolname, false AS rolsuper, false AS rolinherit, "
                 "false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin, false AS rolreplication, "
                 "-1 AS rolconnlimit, NULL::TIMESTAMP AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig"),
    "pg_user": "SELECT '{user}' AS usename, 10::BIGINT AS usesysid, false AS usecreatedb, false AS usesuper",
    "pg_authid": "SELECT 10::BIGINT AS oid, '{user}' AS rolname, false AS rolsuper",
    "pg_namespace": ("SELECT oid, nspname, 10::BIGINT AS nspowner, NULL::VARCHAR[] AS nspacl FROM pg_catalog.pg_namespace "
                     "UNION ALL SELECT 11, 'pg_catalog', 10, NULL UNION ALL SELECT 12, 'information_schema', 10, NULL "
                     # the session's TEMP schema holds warehouse-ml's macros: psql's \df lists them from there
                     "UNION ALL SELECT oid, 'pg_temp_1', 10, NULL FROM duckdb_schemas() WHERE database_name = 'temp'"),
}
# pg_catalog.x -> x: DuckDB finds its own pg_catalog objects on the search path, and this session's TEMP ones first
# (DuckDB also cannot bind SQLAlchemy's three-part pg_catalog.pg_class.oid column references)
_QUALIFIER = re.compile(r"\b(?:\"pg_catalog\"|pg_catalog)\s*\.\s*(?=[\w\"])", re.I)
_OPERATOR = re.compile(r"\bOPERATOR\s*\(\s*pg_catalog\s*\.\s*([~!=<>*+\-/^|&@#%]+)\s*\)", re.I)
_COLLATE = re.compile(r"\bCOLLATE\s+(?:pg_catalog\s*\.\s*)?(?:\"default\"|default|\"C\"|\"POSIX\")", re.I)
_REG_CAST = re.compile(r"^(\s*::\s*(?:pg_catalog\s*\.\s*)?(regclass|regtype|regproc|regprocedure|regnamespace|regrole))\b", re.I)
_REG_CAST_ANY = re.compile(r"::\s*(?:pg_catalog\s*\.\s*)?(?:regclass|regtype|regproc|regprocedure|regnamespace|regrole|oid)\b", re.I)
_REG_CAST_AS = re.compile(r"\bAS\s+(?:pg_catalog\s*\.\s*)?(?:regclass|regtype|regproc|regprocedure|regnamespace|regrole)\s*\)", re.I)
_REG_PARAM = re.compile(r"CAST\s*\(\s*(\$\d+)\s+AS\s+(?:pg_catalog\s*\.\s*)?(regclass|regtype)\s*\)|(\$\d+)\s*::\s*(?:pg_catalog\s*\.\s*)?(regclass|regtype)\b", re.I)
_PG_TYPE_CAST = re.compile(r"::\s*pg_catalog\s*\.\s*(\w+)", re.I)
_OVERRIDDEN_CALL = re.compile(r"\b(" + "|".join(_OVERRIDDEN) + r")\s*\(", re.I)
_CURRENT_SETTING = re.compile(r"\bcurrent_setting\s*\(", re.I)
_ACTIVITY = re.compile(r"\bpg_stat_activity\b", re.I)
_CURSORS = re.compile(r"\bpg_cursors\b", re.I)


def install(cursor: duckdb.DuckDBPyConnection, user: str) -> None:
    """Create this session's catalog objects (TEMP: they live and die with the cursor)."""
    duck = duckdb.__version__
    cursor.execute("CREATE OR REPLACE TEMP VIEW wml_session_settings AS SELECT NULL::VARCHAR AS name, NULL::VARCHAR AS setting")
    safe_user = user.replace("'", "''")
    for name, body in _MACROS.items():
        name = f"wml_{name}" if name in _OVERRIDDEN else name
        cursor.execute(f"CREATE OR REPLACE TEMP MACRO {name}" + body.format(pg=PG_VERSION, duck=duck, user=safe_user))
    for name, columns in _EMPTY.items():
        cols = ", ".join(f"NULL::{c.split(' ', 1)[1]} AS {c.split(' ', 1)[0]}" for c in columns.split(", "))
        cursor.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols} WHERE false")
    for name, body in _VIEWS.items():
        cursor.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS " + body.format(user=safe_user))


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _cursors_relation(session) -> str:
    rows = []
    q = _quote
    for name, portal in session.cursors():
        rows.append(f"({q(name)}, {q(portal.statement)}, {str(portal.hold).lower()}, {str(portal.binary).lower()}, "
                    f"false, to_timestamp({portal.created}))")
    if not rows:
        return ("SELECT NULL::VARCHAR AS name, NULL::VARCHAR AS statement, NULL::BOOLEAN AS is_holdable, "
                "NULL::BOOLEAN AS is_binary, NULL::BOOLEAN AS is_scrollable, NULL::TIMESTAMPTZ AS creation_time WHERE false")
    return ("SELECT * FROM (VALUES " + ", ".join(rows) +
            ") AS c(name, statement, is_holdable, is_binary, is_scrollable, creation_time)")


def rewrite(sql: str, session) -> str:
    """PostgreSQL spellings in a client's statement made into DuckDB's (code only; literals untouched)."""
    parts = segments(sql)
    out = []
    for i, (code, text) in enumerate(parts):
        if not code:
            nxt = parts[i + 1] if i + 1 < len(parts) else None
            if text.startswith("'") and nxt is not None and nxt[0]:
                m = _REG_CAST.match(nxt[1])
                if m:  # 'users'::regclass -> the table's oid
                    fn = "wml_regtype" if m.group(2).lower() == "regtype" else "wml_regclass"
                    out.append(f"{fn}({text})")
                    parts[i + 1] = (True, nxt[1][m.end():])
                    continue
            out.append(text)
            continue
        text = _OPERATOR.sub(r"\1", text)
        text = _COLLATE.sub("", text)
        text = _REG_PARAM.sub(lambda m: f"wml_{(m.group(2) or m.group(4)).lower()}({m.group(1) or m.group(3)})", text)
        text = _REG_CAST_ANY.sub("", text)
        text = _REG_CAST_AS.sub("AS BIGINT)", text)
        text = _PG_TYPE_CAST.sub(r"::\1", text)
        text = _QUALIFIER.sub("", text)
        text = _OVERRIDDEN_CALL.sub(lambda m: f"wml_{m.group(1).lower()}(", text)
        if _CURRENT_SETTING.search(text):  # the session's PostgreSQL parameters, as of now
            text = _CURRENT_SETTING.sub("wml_current_setting(", text)
            rows = ", ".join(f"({_quote(k)}, {_quote(v)})" for k, v in session.params.items())
            session.cursor.execute(f"CREATE OR REPLACE TEMP VIEW wml_session_settings AS SELECT * FROM (VALUES {rows}) "
                                   "AS s(name, setting)")
        if _ACTIVITY.search(text):  # the server's sessions, as of now
            rows = ", ".join(f"({pid}, {_quote(user)}, {_quote(app)}, {_quote(state)}, {_quote(query)}, to_timestamp({t}))"
                             for pid, user, app, state, query, t in session.activity())
            body = (f"SELECT * FROM (VALUES {rows}) AS a(pid, usename, application_name, state, query, backend_start)"
                    if rows else "SELECT NULL::INTEGER AS pid, NULL::VARCHAR AS usename, NULL::VARCHAR AS application_name, "
                    "NULL::VARCHAR AS state, NULL::VARCHAR AS query, NULL::TIMESTAMPTZ AS backend_start WHERE false")
            session.cursor.execute("CREATE OR REPLACE TEMP VIEW pg_stat_activity AS SELECT NULL::BIGINT AS datid, "
                                   f"current_database() AS datname, * FROM ({body})")
        if _CURSORS.search(text):  # this session's SQL cursors, as of now (no stream is open on the cursor here)
            session.cursor.execute("CREATE OR REPLACE TEMP VIEW pg_cursors AS " + _cursors_relation(session))
        out.append(text)
    return "".join(out)
