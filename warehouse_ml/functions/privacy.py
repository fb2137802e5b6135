"""Privacy in SQL: differentially private aggregates, the privacy budget ledger, pseudonyms, personal data.

``FROM dp_aggregate('orders', group_by := ['channel'], metrics := ['count', 'avg(revenue)'],
bounds := {'revenue': [0, 500]}, epsilon := 1, delta := 1e-6, privacy_unit := 'user_id')`` bounds each
privacy unit's contribution in SQL (at most ``max_groups_per_unit`` groups per unit, chosen by a salted hash,
and ``max_rows_per_unit`` rows per unit and group, chosen at random; values clamped to their bounds), aggregates
per group in the same query, and hands the per-group aggregates to the OpenDP kernels in ``tasks.privacy``.
The macro joins the released groups back to their keys so that every key keeps its type.

Every release is written to the ledger ``wml.dp_ledger`` before it is returned; with a budget set
(``dp_set_budget``), a release that would take the relation past it is refused, naming what is left.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import Relation
from ..binding.registry import scalar_udf
from ..binding.spec import (
    Anything, Arg, Identifier, Identifiers, Option, RelationArg, Struct, spec, sql_function, sql_macro,
)
from ..errors import InvalidArgument, WmlError
from ..tasks import privacy as pv
from .base import numeric_column

LEDGER_SQL = [
    "CREATE SCHEMA IF NOT EXISTS wml",
    """CREATE TABLE IF NOT EXISTS wml.dp_budgets (
        relation VARCHAR PRIMARY KEY,
        epsilon DOUBLE NOT NULL,
        delta DOUBLE NOT NULL,
        set_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS wml.dp_ledger (
        seq BIGINT NOT NULL,
        relation VARCHAR NOT NULL,
        function VARCHAR NOT NULL,
        privacy_unit VARCHAR,
        epsilon DOUBLE NOT NULL,
        delta DOUBLE NOT NULL,
        released_at TIMESTAMP NOT NULL,
        query JSON)""",
]
DP_ROW = ("STRUCT(group_key VARCHAR, metric VARCHAR, value DOUBLE, noise_scale DOUBLE, ci_low DOUBLE, "
          "ci_high DOUBLE, epsilon DOUBLE, mechanism VARCHAR, notes VARCHAR)")
BUDGET_ROW = ("STRUCT(relation VARCHAR, epsilon_budget DOUBLE, delta_budget DOUBLE, epsilon_spent DOUBLE, "
              "delta_spent DOUBLE, epsilon_remaining DOUBLE, delta_remaining DOUBLE, releases BIGINT)")


class PrivacyBudgetExceeded(WmlError):
    """A release would spend more of a relation's privacy budget than is left; nothing was released."""


class PrivacyLedgerUnavailable(WmlError):
    """A release cannot be recorded (a read-only database); nothing was released."""


# -- the ledger ----------------------------------------------------------------------------------------------
def relation_key(rel: Relation) -> str:
    """The budget's key: schema and table as the catalog spells them (the same after the file is reopened)."""
    return f"{rel.schema}.{rel.table}"


def _ensure_ledger(cur) -> None:
    exists = cur.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'wml' AND table_name IN "
                         "('dp_budgets', 'dp_ledger') AND database_name = current_database()").fetchall()[0][0]
    if exists < 2:
        for stmt in LEDGER_SQL:
            cur.execute(stmt)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def spend(ctx, rel: Relation, epsilon: float, delta: float, function: str, privacy_unit: str | None, query: dict) -> None:
    """Record a release in one transaction, or refuse it (nothing recorded) when it exceeds the budget."""
    cur = ctx.runtime.con.cursor()
    key = relation_key(rel)
    try:
        if cur.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]:
            raise PrivacyLedgerUnavailable(f"this release of '{rel.name}' cannot be recorded in the privacy ledger because "
                                        "the database is open read-only, so it is refused. Open it writable (e.g. "
                                        "warehouse-ml serve --allow-writes) to release private results")
        _ensure_ledger(cur)
        cur.execute("BEGIN TRANSACTION")
        budget = cur.execute("SELECT epsilon, delta FROM wml.dp_budgets WHERE relation = $1", [key]).fetchall()
        spent_eps, spent_delta, _ = _spent(cur, key)
        if budget:
            b_eps, b_delta = budget[0]
            if spent_eps + epsilon > b_eps * (1 + 1e-9) or spent_delta + delta > b_delta * (1 + 1e-9):
                cur.execute("ROLLBACK")
                raise PrivacyBudgetExceeded(
                    f"this release of '{rel.name}' needs epsilon {epsilon:g} and delta {delta:.3g}, but only epsilon "
                    f"{max(b_eps - spent_eps, 0):g} and delta {max(b_delta - spent_delta, 0):.3g} remain of its budget "
                    f"(epsilon {b_eps:g}, delta {b_delta:.3g}; spent {spent_eps:g} and {spent_delta:.3g}). Nothing was "
                    f"released. Ask for less (a smaller epsilon, fewer metrics) or raise the budget with "
                    f"FROM dp_set_budget('{rel.name}', epsilon := ...) if your policy allows it")
        seq = cur.execute("SELECT coalesce(max(seq), 0) + 1 FROM wml.dp_ledger").fetchall()[0][0]
        cur.execute("INSERT INTO wml.dp_ledger VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    [seq, key, function, privacy_unit, epsilon, delta, _now(), json.dumps(query, default=str)])
        cur.execute("COMMIT")
    except BaseException:
        try:
            cur.execute("ROLLBACK")
        except Exception:  # noqa: BLE001  (already rolled back or never begun)
            pass
        raise
    finally:
        cur.close()


def _spent(cur, key: str) -> tuple[float, float, int]:
    row = cur.execute("SELECT coalesce(sum(epsilon), 0), coalesce(sum(delta), 0), count(*) FROM wml.dp_ledger "
                      "WHERE relation = $1", [key]).fetchall()[0]
    return float(row[0]), float(row[1]), int(row[2])


def _budget_rows(ctx, key: str | None) -> list[dict]:
    cur = ctx.cursor()
    _ensure_ledger(cur)
    keys = [key] if key else [r[0] for r in cur.execute(
        "SELECT relation FROM wml.dp_budgets UNION SELECT relation FROM wml.dp_ledger ORDER BY 1").fetchall()]
    out = []
    for k in keys:
        b = cur.execute("SELECT epsilon, delta FROM wml.dp_budgets WHERE relation = $1", [k]).fetchall()
        eps, dlt, n = _spent(cur, k)
        b_eps, b_delta = b[0] if b else (None, None)
        out.append(dict(relation=k, epsilon_budget=b_eps, delta_budget=b_delta, epsilon_spent=eps, delta_spent=dlt,
                        epsilon_remaining=None if b_eps is None else max(b_eps - eps, 0.0),
                        delta_remaining=None if b_delta is None else max(b_delta - dlt, 0.0), releases=n))
    return out


@sql_function("dp_set_budget", "Sets the privacy budget of a relation: what may be spent in total.",
              args=[RelationArg(), Arg("epsilon", "DOUBLE", None, cast=True), Arg("delta", "DOUBLE", 1e-5, cast=True)],
              returns=BUDGET_ROW, writes=True)
def dp_set_budget(ctx, relation, epsilon, delta):
    rel = ctx.relation(relation)
    eps = pv.check_epsilon(epsilon)
    dlt = pv.check_delta(delta)
    key = relation_key(rel)
    cur = ctx.runtime.con.cursor()
    try:
        _ensure_ledger(cur)
        cur.execute("INSERT OR REPLACE INTO wml.dp_budgets VALUES ($1, $2, $3, $4)", [key, eps, dlt, _now()])
    finally:
        cur.close()
    return _budget_rows(ctx, key)


@sql_function("dp_budget", "The privacy budget of a relation (or of every relation): set, spent and left.",
              args=[Arg("relation", default=None)], returns=BUDGET_ROW)
def dp_budget(ctx, relation):
    return _budget_rows(ctx, relation_key(ctx.relation(relation)) if relation is not None else None)


# -- dp_aggregate --------------------------------------------------------------------------------------------
def parse_request(rel: Relation, opts: dict) -> dict:
    """Validate every dp_aggregate argument against the relation; returns the resolved request."""
    groups = [rel.column(c, "group_by") for c in opts["group_by"] or []]
    unit = rel.column(opts["privacy_unit"], "privacy_unit") if opts["privacy_unit"] is not None else None
    if unit is not None and unit in groups:
        raise InvalidArgument("privacy_unit", f"'{unit}' is also a group_by column: every group would be one person",
                              "Group by something else, or count people with metrics := ['count']")
    specs = pv.parse_metrics(opts["metrics"])
    bounds = {rel.column(c, "bounds"): pv.check_bounds(b, f"bounds.{c}") for c, b in (opts["bounds"] or {}).items()}
    resolved = []
    for s in specs:
        if s.column is None:
            resolved.append(s)
            continue
        col = numeric_column(rel, s.column, "metrics")
        if col not in bounds:
            raise InvalidArgument("bounds", f"{s.name} needs public bounds for '{col}' (bounds taken from the data "
                                  "would themselves leak)", f"Add them, e.g. bounds := {{'{col}': [0, 500]}}")
        resolved.append(pv.MetricSpec(s.kind, col, s.alpha))
    return dict(groups=groups, unit=unit, metrics=resolved, bounds=bounds,
                epsilon=pv.check_epsilon(opts["epsilon"]), delta=pv.check_delta(opts["delta"]),
                max_groups=pv.check_count(opts["max_groups_per_unit"], "max_groups_per_unit", 1),
                max_rows=pv.check_count(opts["max_rows_per_unit"], "max_rows_per_unit", 1))


def bounded_aggregates(ctx, rel: Relation, req: dict) -> tuple[list[str], pv.GroupAggregates]:
    """One SQL pass: bound each unit's contribution, then aggregate per group (clamped sums, counts, lists).

    A group's key is its text ``CAST(row(<group columns in table order>, 1) AS VARCHAR)``, spelled exactly like the
    macro's ``row(*COLUMNS(...))`` so the released groups join back to their typed keys; it is built per group,
    after aggregating, never per row."""
    cols = sorted({m.column for m in req["metrics"] if m.column is not None})
    groups = [f"__g{j}" for j, _ in enumerate(c for c in rel.columns if c in set(req["groups"]))]
    unit = rel.q(req["unit"]) if req["unit"] else None
    select = [f"{rel.q(c)} AS __g{j}" for j, c in enumerate(c for c in rel.columns if c in set(req["groups"]))]
    select += [f"CAST({rel.q(c)} AS DOUBLE) AS __v{i}" for i, c in enumerate(cols)]
    one_row = req["max_rows"] == 1 or not unit  # then a group's rows are its units
    aggs = [f"CAST(row({''.join(g + ', ' for g in groups)}1) AS VARCHAR) AS __k",
            "count(*) AS units" if one_row else "count(DISTINCT __u) AS units", "count(*) AS n"]
    want_list = {m.column for m in req["metrics"] if m.kind == "quantile"}
    for i, c in enumerate(cols):
        lo, hi = req["bounds"][c]  # validated finite floats, written as DOUBLE literals
        clamped = f"greatest(least(__v{i}, CAST({hi!r} AS DOUBLE)), CAST({lo!r} AS DOUBLE))"
        aggs += [f"coalesce(sum({clamped}), 0) AS s{i}", f"count(__v{i}) AS c{i}"]
        if c in want_list:
            aggs.append(f"list({clamped}) FILTER (WHERE __v{i} IS NOT NULL) AS l{i}")
    if unit:
        salt = os.urandom(8).hex()  # hex digits only: safe as a literal
        select = [f"{unit} AS __u", "random() AS __r"] + select
        if req["max_groups"] == 1 and req["max_rows"] == 1:  # one random row per unit: a single window
            capped = "SELECT * FROM src QUALIFY row_number() OVER (PARTITION BY __u ORDER BY __r) = 1"
        else:  # a unit's groups ranked by a salted hash of unit and key, its rows in a group at random
            rank = ", ".join([f"hash(__u, {', '.join(groups)}, '{salt}')"] + groups) if groups else "1"
            capped = (f"SELECT * FROM src QUALIFY dense_rank() OVER (PARTITION BY __u ORDER BY {rank}) <= {req['max_groups']} "
                      f"AND row_number() OVER (PARTITION BY __u{''.join(', ' + g for g in groups)} ORDER BY __r) <= {req['max_rows']}")
        where = f"WHERE {unit} IS NOT NULL"
    else:
        capped, where = "SELECT * FROM src", ""
    group_by = f"GROUP BY {', '.join(groups)}" if groups else ""
    sql = (f"WITH src AS (SELECT {', '.join(select) or '1 AS __one'} FROM {rel.sql} {where}), capped AS ({capped}) "
           f"SELECT {', '.join(aggs)} FROM capped {group_by} ORDER BY 1")
    t = ctx.read_arrow(sql)
    agg = pv.GroupAggregates(units=t.column("units").to_numpy(), rows=t.column("n").to_numpy())
    for i, c in enumerate(cols):
        agg.sums[c] = pc.cast(t.column(f"s{i}"), pa.float64()).to_numpy()
        agg.nonnull[c] = t.column(f"c{i}").to_numpy()
        if c in want_list:
            lists = t.column(f"l{i}").combine_chunks()
            flat = pc.fill_null(lists.flatten(), 0.0).to_numpy(zero_copy_only=False)
            offsets = lists.offsets.to_numpy()
            agg.values[c] = [flat[offsets[g]:offsets[g + 1]] for g in range(len(lists))]
    return t.column("__k").to_pylist(), agg


# The UDF releases the groups; the macro joins each back to its key columns, read from the relation so they keep
# their types. The relation is read as query_table(wml_dp_relation(...)), which checks every argument while DuckDB
# binds the macro.
_DP_BODY = """WITH released AS (
    {call}
), src AS (
    SELECT *, 1 AS __wml_one
    FROM query_table(wml_dp_relation(relation, CAST({options} AS VARCHAR)))
), keys AS (
    SELECT *, CAST(row(*COLUMNS(*)) AS VARCHAR) AS __wml_key
    FROM (SELECT DISTINCT COLUMNS(lambda c: c = '__wml_one'
            OR list_contains(list_transform(coalesce(CAST(group_by AS VARCHAR[]), []), lambda x: lower(x)), lower(c)))
          FROM src)
)
SELECT keys.* EXCLUDE (__wml_one, __wml_key), released.* EXCLUDE (group_key)
FROM released LEFT JOIN keys ON released.group_key = keys.__wml_key
ORDER BY ALL"""


@sql_function(
    "dp_aggregate", "Differentially private counts, sums, means and quantiles per group, recorded in the privacy "
    "ledger.", args=[RelationArg()], returns=DP_ROW, body=_DP_BODY, options=[
        Option("group_by", Identifiers(nonempty=False, one_alone=False), fix="Write group_by := ['channel']"),
        Option("metrics", Anything("a list such as ['count', 'avg(revenue)']")),
        Option("bounds", Struct(), fix="Write bounds := {'revenue': [0, 500]}"),
        Option("epsilon", Anything("a positive privacy budget"), 1.0),
        Option("delta", Anything("a probability"), 1e-6),
        Option("privacy_unit", Identifier()),
        Option("max_groups_per_unit", Anything("a whole number >= 1"), 1),
        Option("max_rows_per_unit", Anything("a whole number >= 1"), 1),
    ])
def dp_aggregate(ctx, relation, **opts):
    rel = ctx.relation(relation)
    req = parse_request(rel, opts)
    keys, agg = bounded_aggregates(ctx, rel, req)
    release = pv.dp_aggregate(agg, req["metrics"], req["bounds"], req["epsilon"], req["delta"], req["max_groups"],
                              req["max_rows"], grouped=bool(req["groups"]))
    notes = list(release.notes)
    if req["unit"] is None:
        notes.insert(0, "no privacy_unit: each row is protected as if it were one person (name the person column "
                        "with privacy_unit := 'user_id' when people have several rows)")
    else:
        notes.insert(0, f"privacy unit '{req['unit']}': at most {req['max_groups']} group(s) and {req['max_rows']} "
                        "row(s) per group from each unit; values clamped to their bounds")
    spend(ctx, rel, release.epsilon, release.delta, "dp_aggregate", req["unit"],
          {"group_by": req["groups"], "metrics": [m.name for m in req["metrics"]], "bounds": req["bounds"],
           "epsilon": req["epsilon"], "delta": req["delta"], "max_groups_per_unit": req["max_groups"],
           "max_rows_per_unit": req["max_rows"]})
    text = "; ".join(notes + [f"release spent epsilon {release.epsilon:.6g}, delta {release.delta:.3g}"])
    return [dict(group_key=keys[r.pop("group")], notes=text, **r) for r in release.rows]


@scalar_udf("wml_dp_relation", args=["VARCHAR", "VARCHAR"], returns="VARCHAR")
def dp_relation(ctx, relation, options):
    """Check dp_aggregate's arguments while DuckDB binds the macro; return the relation's quoted name."""
    out = []
    for name, raw in zip(relation.to_pylist(), options.to_pylist()):
        rel = ctx.relation(name)
        parse_request(rel, spec("dp_aggregate").parse_options(json.loads(raw) if raw else {}))
        out.append(rel.sql)
    return pa.array(out, pa.string())


# -- pseudonyms and personal data ----------------------------------------------------------------------------
@scalar_udf("wml_pseudonym_check", args=["VARCHAR", "VARCHAR[]", "VARCHAR"], returns="VARCHAR")
def pseudonym_check(ctx, relation, columns, key):
    """Validate pseudonymize's arguments; return the relation's quoted name for ``query_table``."""
    out = []
    for name, cols, k in zip(relation.to_pylist(), columns.to_pylist(), key.to_pylist()):
        rel = ctx.relation(name)
        pv.keyed_hash_pads(k)
        if not cols:
            raise InvalidArgument("columns", "names no columns",
                                  f"List the columns to replace, e.g. columns := ['email'] (data_quality('{name}') flags personal ones)")
        for c in cols:
            rel.column(c, "columns")
        out.append(rel.sql)
    return pa.array(out, pa.string())


# HMAC-SHA256 computed by DuckDB column-wise over the padded keys wml_hmac_pad returns once per query.
sql_macro("pseudonymize", "The relation's own columns with each listed column replaced by its keyed hash "
          "(HMAC-SHA256): the same value and key give the same pseudonym, so tables still join.", """
    SELECT COLUMNS(lambda c: NOT list_contains(list_transform(CAST(columns AS VARCHAR[]), lambda x: lower(x)), lower(c))),
        sha256(wml_hmac_pad("key", 'outer') || unhex(sha256(wml_hmac_pad("key", 'inner')
            || encode(CAST(COLUMNS(lambda c: list_contains(list_transform(CAST(columns AS VARCHAR[]), lambda x: lower(x)),
                                            lower(c))) AS VARCHAR)))))
    FROM query_table(wml_pseudonym_check(relation, CAST(columns AS VARCHAR[]), "key"))""", module="privacy",
          args=[RelationArg()], options=[Option("columns", Identifiers()), Option("key", Anything("a secret key"))])


@scalar_udf("wml_hmac_pad", args=["VARCHAR", "VARCHAR"], returns="BLOB")
def hmac_pad(ctx, key, which):
    """The inner or outer padded key of HMAC-SHA256 (a constant per query, so SQL hashes column-wise)."""
    out = []
    for k, w in zip(key.to_pylist(), which.to_pylist()):
        inner, outer = pv.keyed_hash_pads(k)
        out.append(inner if w == "inner" else outer)
    return pa.array(out, pa.binary())


def personal_columns(ctx, rel: Relation, sample_rows: int = 500) -> dict[str, str]:
    """Columns that look personal (by name, or by the values of a sample of text columns): column -> kind."""
    found = {c: k for c in rel.columns if (k := pv.personal_kind_by_name(c))}
    text = [c for c, t in rel.columns.items() if c not in found and t.upper() == "VARCHAR"]
    if text:
        sample = ctx.read_arrow(f"SELECT {', '.join(rel.q(c) for c in text)} FROM {rel.sql} LIMIT {int(sample_rows)}")
        found.update(personal_in_table(sample, text))
    return found


def personal_in_table(table: pa.Table, columns: list[str] | None = None) -> dict[str, str]:
    """The same detection over an Arrow table already read (names first, then values of text columns)."""
    found = {}
    for c in columns or table.column_names:
        kind = pv.personal_kind_by_name(c)
        col = table.column(c)
        if kind is None and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            sample = col.slice(0, 500).combine_chunks()
            non_null = len(sample) - sample.null_count
            share = pc.count_distinct(sample).as_py() / max(non_null, 1)
            kind = pv.personal_kind_by_values(sample, share)
        if kind:
            found[c] = kind
    return found


# -- segment_profiles(..., epsilon := e) ---------------------------------------------------------------------
def _model_bounds(m) -> list[tuple[float, float]]:
    """Per feature, the stored model's mean +/- 3 standard deviations mapped back to raw units (log features
    through expm1): the default public bounds when the analyst gives none."""
    out = []
    for j in range(len(m.names)):
        lo, hi = m.mean[j] - 3 * m.scale[j], m.mean[j] + 3 * m.scale[j]
        if m.log_mask[j]:
            lo, hi = np.expm1(max(lo, 0.0)), np.expm1(hi)
        out.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
    return out


def private_profiles(ctx, relation: str, model: str, opts: dict, load_model, read) -> list[dict]:
    """Segment sizes and feature means released with Laplace noise under the stored segment model, which is
    treated as public (fitted on data that may be published, or accepted as exact)."""
    from ..errors import ModelNotFound
    from ..tasks import segment as sg

    epsilon = pv.check_epsilon(opts["epsilon"])
    if opts.get("k") is not None or opts.get("features") is not None:
        raise InvalidArgument("epsilon", "a private profile does not fit a segment model (its centres would be exact)",
                              f"Fit the model first with FROM segment_users('{relation}', model := '{model}'), then profile it")
    try:
        sm, m = load_model(ctx, model)
    except ModelNotFound:
        raise InvalidArgument("model", f"no segment model named '{model}' to profile privately",
                              f"Fit one first: FROM segment_users('{relation}', model := '{model}')") from None
    rel = ctx.relation(relation)
    bounds = _model_bounds(m)
    given = opts["bounds"] or {}
    lower = {c.lower(): i for i, c in enumerate(m.names)}
    for c, b in given.items():
        if c.lower() not in lower:
            raise InvalidArgument("bounds", f"'{c}' is not a feature of model '{model}'", f"Its features: {', '.join(m.names)}")
        bounds[lower[c.lower()]] = pv.check_bounds(b, f"bounds.{c}")
    _, X = read(ctx, rel, None, [rel.column(c, "relation") for c in m.names])
    seg, _ = m.assign(X)
    rel_st = pv.dp_segment_sums(seg, X, m.k, bounds, epsilon, np.random.default_rng())
    spend(ctx, rel, rel_st["epsilon"], 0.0, "segment_profiles", None,
          {"model": model, "version": sm.version, "epsilon": epsilon, "bounds": dict(zip(m.names, bounds))})
    n = rel_st["n"]
    total = max(float(n.sum()), 1.0)
    z = m.transform(rel_st["means"])
    notes = (f"differential privacy: sizes and feature means with Laplace noise (epsilon {rel_st['epsilon']:.6g}); "
             f"features clamped to " + ", ".join(f"{c} [{lo:g}, {hi:g}]" for c, (lo, hi) in zip(m.names, bounds))
             + f"; segments of model '{model}' version {sm.version}, whose centres are treated as public; "
             "feature_z from the noisy means; intervals are 95% noise intervals")
    rows = []
    for s in range(m.k):
        intervals = {"n": [float(rel_st["n_low"][s]), float(rel_st["n_high"][s])]}
        intervals.update({c: [float(rel_st["lows"][s, j]), float(rel_st["highs"][s, j])] for j, c in enumerate(m.names)})
        rows.append(dict(segment=s + 1, n=int(round(n[s])), share=float(n[s] / total),
                         description=sg.describe(z[s], m.names),
                         feature_means={c: float(rel_st["means"][s, j]) for j, c in enumerate(m.names)},
                         feature_z={c: float(z[s, j]) for j, c in enumerate(m.names)}, model=model, version=sm.version,
                         notes=notes, intervals=intervals, epsilon=rel_st["epsilon"]))
    return rows


# -- personal data in trainers -------------------------------------------------------------------------------
PERSONAL_MODES = ("exclude", "hash")


class PersonalPlan:
    """What ml_train does with columns that look personal: leave them out (default), or keep text ones with their
    categories stored as salted digests (``personal := 'hash'``); never raw values in a stored model."""

    def __init__(self, kinds: dict[str, str], mode: str):
        self.kinds = kinds
        text = {c for c, k in kinds.items() if k.startswith("text:")}
        self.hashed = {c: os.urandom(16).hex() for c in text} if mode == "hash" else {}
        self.excluded = [c for c in kinds if c not in self.hashed]

    def explain(self, featurizer) -> None:
        """Say why each personal column was left out or hashed (in ml_train's notes)."""
        for e in featurizer.excluded:
            if e["name"] in self.excluded:
                kind = self.kinds[e["name"]].removeprefix("text:")
                e["reason"] = (f"looks personal ({kind}): left out of the model by default"
                               + ("; personal := 'hash' keeps a text column with hashed categories"
                                  if self.kinds[e["name"]].startswith("text:") else ""))
        for f in featurizer.features:
            if f["name"] in self.hashed:
                featurizer.excluded.append({"name": f["name"], "reason": f"looks personal ({self.kinds[f['name']].removeprefix('text:')}): "
                                            "kept with its categories stored as salted hashes (personal := 'hash')"})


def personal_plan(table: pa.Table, label: str, exclude: list[str], mode) -> PersonalPlan:
    if mode is None:
        mode = "exclude"
    if mode not in PERSONAL_MODES:
        raise InvalidArgument("personal", f"expected 'exclude' or 'hash', got {mode!r}",
                              "Leave it out to drop personal columns, or pass personal := 'hash' to keep text ones hashed")
    skip = {c.lower() for c in exclude} | {label.lower()}
    cols = [c for c in table.column_names if c.lower() not in skip]
    kinds = {}
    for c, kind in personal_in_table(table, cols).items():
        t = table.column(c).type
        kinds[c] = ("text:" if pa.types.is_string(t) or pa.types.is_large_string(t) else "") + kind
    return PersonalPlan(kinds, mode)
