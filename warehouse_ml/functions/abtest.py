"""ab_test and ab_sample_size: experiment analysis in SQL over the kernels in ``tasks.abtest``."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.spec import Anything, Arg, Identifier, Interval, Option, RelationArg, StrOptions, sql_function
from ..errors import AmbiguousColumn, InvalidArgument
from ..tasks import abtest as ab
from ..tasks import roles
from .base import numeric_column

AB_ROW = ("STRUCT(variant VARCHAR, n BIGINT, mean DOUBLE, lift DOUBLE, ci_low DOUBLE, ci_high DOUBLE, "
          "p_value DOUBLE, significant BOOLEAN, test VARCHAR, srm_p_value DOUBLE, relative_lift DOUBLE, "
          "relative_ci_low DOUBLE, relative_ci_high DOUBLE, p_value_raw DOUBLE, is_control BOOLEAN, "
          "n_excluded BIGINT, notes VARCHAR)")


@sql_function(
    "ab_test", "One row per variant compared with the control: lift, confidence interval, corrected p-value.",
    args=[RelationArg()], returns=AB_ROW, options=[
        Option("variant", Identifier(), doc="the assignment column (inferred from its name)"),
        Option("metric", Identifier(), doc="the outcome column (required)"),
        Option("control", Anything("a value of the variant column")),
        Option("covariate", Identifier(), doc="a pre-experiment column for CUPED"),
        Option("alpha", Interval(float, 0, 1, closed="neither"), 0.05),
        Option("split", Anything("the planned shares of the variants")),
        Option("test", StrOptions({"auto", "z", "t"}, "test"), "auto", fix="Use 'auto', 'z' (proportions) or 't' (Welch)"),
        Option("epsilon", Anything("a positive privacy budget")),
        Option("bounds", Anything("[lower, upper]")),
    ])
def ab_test(ctx, relation, **opts):
    alpha = opts["alpha"]
    rel = ctx.relation(relation)
    variant, metric, covariate = ab_columns(rel, opts, relation)
    cols = [f"CAST({rel.q(variant)} AS VARCHAR) AS v", f"CAST({rel.q(metric)} AS DOUBLE) AS m"]
    if covariate:
        cols.append(f"CAST({rel.q(covariate)} AS DOUBLE) AS c")
    table = ctx.read_arrow(f"SELECT {', '.join(cols)} FROM {rel.sql}")
    if opts["epsilon"] is not None:
        labels, codes, y = _encoded(table)
        return private_ab_test(ctx, rel, opts, codes, y, labels, alpha)
    return ab_rows(table, opts, alpha)


def ab_columns(rel, opts: dict, relation: str) -> tuple[str, str, str | None]:
    """The variant, metric and covariate (or None) columns of ``rel``: named, or the variant inferred by name.
    ``opts``: ab_test's options as its spec parses them (Spark calls this too)."""
    if opts["variant"] is not None:
        variant = rel.column(opts["variant"], "variant")
    else:
        named = [c for c in rel.columns if roles.VARIANT.match(c)]
        if len(named) != 1:
            raise AmbiguousColumn(rel.name, "variant", "variant (assignment)", named or list(rel.columns))
        variant = named[0]
    if opts["metric"] is None:
        raise InvalidArgument("metric", "is required", f"Name the outcome column, e.g. FROM ab_test('{relation}', metric := 'converted')")
    metric = numeric_column(rel, opts["metric"], "metric")
    covariate = numeric_column(rel, opts["covariate"], "covariate") if opts["covariate"] is not None else None
    if metric == variant:
        raise InvalidArgument("metric", f"'{metric}' is the variant column", "Pass the outcome column as metric")
    return variant, metric, covariate


def _encoded(table: pa.Table) -> tuple[list, np.ndarray, np.ndarray]:
    enc = pc.dictionary_encode(table.column("v").combine_chunks())
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    return enc.dictionary.to_pylist(), codes, pc.fill_null(table.column("m"), np.nan).to_numpy()


def ab_rows(table: pa.Table, opts: dict, alpha: float) -> list[dict]:
    """ab_test's rows (AB_ROW) from v (the variant as text), m (the metric) and, with a covariate, c."""
    labels, codes, y = _encoded(table)
    x = pc.fill_null(table.column("c"), np.nan).to_numpy() if "c" in table.column_names else None
    result = ab.ab_test(codes, y, labels=labels, control=opts["control"], covariate=x, alpha=alpha,
                        split=opts["split"], test=opts["test"])
    notes = "; ".join(result.notes) or None
    return [dict(r, notes=notes) for r in result.rows]


def private_ab_test(ctx, rel, opts: dict, codes: np.ndarray, y: np.ndarray, labels: list, alpha: float) -> list[dict]:
    """ab_test(..., epsilon := e): the differentially private release (``tasks.privacy.dp_ab_test``), recorded
    in the relation's privacy ledger before it is returned."""
    from ..tasks import privacy as pv
    from .privacy import spend

    if opts["covariate"] is not None:
        raise InvalidArgument("covariate", "CUPED is not available with epsilon (its adjustment would need exact moments)",
                              "Leave covariate out for a private test, or drop epsilon for an exact one")
    epsilon = pv.check_epsilon(opts["epsilon"])
    bounds = pv.check_bounds(opts["bounds"], "bounds") if opts["bounds"] is not None else None
    metric_type = rel.columns[rel.column(opts["metric"], "metric")].upper()
    if bounds is None and not re.fullmatch(r"BOOLEAN|U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?", metric_type):
        raise InvalidArgument("bounds", f"a private A/B test of the {metric_type} metric '{opts['metric']}' needs public "
                              "bounds (only 0/1 metrics, stored as BOOLEAN or integers, default to [0, 1])",
                              "Pass e.g. bounds := [0, 500]; values outside are clamped")
    rows, notes, spent = pv.dp_ab_test(codes, y, epsilon, bounds, control=opts["control"], alpha=alpha,
                                       labels=labels, split=opts["split"])
    spend(ctx, rel, spent, 0.0, "ab_test", None, {"metric": opts["metric"], "variant": opts["variant"],
                                                  "epsilon": epsilon, "bounds": bounds})
    return [dict(r, notes="; ".join(notes)) for r in rows]


@sql_function("ab_sample_size", "Users per variant to detect an absolute change of min_detectable_effect from "
              "baseline (two-sided test).", kind="scalar", returns="BIGINT",
              args=[Arg("baseline", "DOUBLE", cast=True), Arg("min_detectable_effect", "DOUBLE", cast=True),
                    Arg("alpha", "DOUBLE", 0.05, cast=True), Arg("power", "DOUBLE", 0.8, cast=True)])
def ab_sample_size(ctx, baseline, mde, alpha, power):
    arrays = [pc.fill_null(pc.cast(a, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
              for a in (baseline, mde, alpha, power)]
    n = ab.sample_size(*arrays)
    valid = np.isfinite(n)
    return pa.array(np.ceil(np.where(valid, n, 0)).astype(np.int64), pa.int64(), mask=~valid)


@sql_function("ab_power", "Power of the two-sided test with n_per_arm users in each arm (the inverse of ab_sample_size).",
              kind="scalar", returns="DOUBLE",
              args=[Arg("baseline", "DOUBLE", cast=True), Arg("min_detectable_effect", "DOUBLE", cast=True),
                    Arg("n_per_arm", "DOUBLE", cast=True), Arg("alpha", "DOUBLE", 0.05, cast=True)])
def ab_power(ctx, baseline, mde, n_per_arm, alpha):
    arrays = [pc.fill_null(pc.cast(a, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
              for a in (baseline, mde, n_per_arm, alpha)]
    p = ab.power(*arrays)
    return pa.array(p, pa.float64(), mask=~np.isfinite(p))
