"""ab_test and ab_sample_size: experiment analysis in SQL over the kernels in ``tasks.abtest``."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import is_numeric_type
from ..binding.registry import JSON, scalar_udf, table_udf
from ..errors import AmbiguousColumn, InvalidArgument
from ..tasks import abtest as ab

OPTIONS = {"variant", "metric", "control", "covariate", "alpha", "split", "test", "epsilon", "bounds"}
AB_ROW = ("STRUCT(variant VARCHAR, n BIGINT, mean DOUBLE, lift DOUBLE, ci_low DOUBLE, ci_high DOUBLE, "
          "p_value DOUBLE, significant BOOLEAN, test VARCHAR, srm_p_value DOUBLE, relative_lift DOUBLE, "
          "relative_ci_low DOUBLE, relative_ci_high DOUBLE, p_value_raw DOUBLE, is_control BOOLEAN, "
          "n_excluded BIGINT, notes VARCHAR)")
_VARIANT_NAME = re.compile(r"^(variant|variation|group|arm|treatment|bucket|cohort|experiment_group|test_group)$",
                           re.IGNORECASE)


def _options(options: dict | None) -> dict:
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = set(options) - OPTIONS
    if unknown:
        raise InvalidArgument(sorted(unknown)[0], "is not an option of ab_test", f"Use: {', '.join(sorted(OPTIONS))}")
    return options


def _metric_column(rel, name: str, argument: str) -> str:
    col = rel.column(name, argument)
    t = rel.columns[col]
    if not (is_numeric_type(t) or t.upper() == "BOOLEAN"):
        raise InvalidArgument(argument, f"column '{col}' is {t}, not a number",
                              f"Pass a numeric or 0/1 column, or cast it in a view (e.g. CAST({col} AS DOUBLE))")
    return col


@table_udf("wml_ab_test", args=["VARCHAR", JSON], returns=AB_ROW)
def ab_test(ctx, relation, options):
    opts = _options(options)
    alpha = ab.check_probability("alpha", opts.get("alpha", 0.05), "Pass e.g. alpha := 0.05")
    rel = ctx.relation(relation)
    variant, metric, covariate = ab_columns(rel, opts, relation)
    cols = [f"CAST({rel.q(variant)} AS VARCHAR) AS v", f"CAST({rel.q(metric)} AS DOUBLE) AS m"]
    if covariate:
        cols.append(f"CAST({rel.q(covariate)} AS DOUBLE) AS c")
    table = ctx.read_arrow(f"SELECT {', '.join(cols)} FROM {rel.sql}")
    if "epsilon" in opts:
        labels, codes, y = _encoded(table)
        return private_ab_test(ctx, rel, opts, codes, y, labels, alpha)
    return ab_rows(table, opts, alpha)


def ab_columns(rel, opts: dict, relation: str) -> tuple[str, str, str | None]:
    """The variant, metric and covariate (or None) columns of ``rel``: named, or the variant inferred by name."""
    if "variant" in opts:
        variant = rel.column(opts["variant"], "variant")
    else:
        named = [c for c in rel.columns if _VARIANT_NAME.match(c)]
        if len(named) != 1:
            raise AmbiguousColumn(rel.name, "variant", "variant (assignment)", named or list(rel.columns))
        variant = named[0]
    if "metric" not in opts:
        raise InvalidArgument("metric", "is required", f"Name the outcome column, e.g. FROM ab_test('{relation}', metric := 'converted')")
    metric = _metric_column(rel, opts["metric"], "metric")
    covariate = _metric_column(rel, opts["covariate"], "covariate") if "covariate" in opts else None
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
    result = ab.ab_test(codes, y, labels=labels, control=opts.get("control"), covariate=x, alpha=alpha,
                        split=opts.get("split"), test=str(opts.get("test", "auto")).lower())
    notes = "; ".join(result.notes) or None
    return [dict(r, notes=notes) for r in result.rows]


def private_ab_test(ctx, rel, opts: dict, codes: np.ndarray, y: np.ndarray, labels: list, alpha: float) -> list[dict]:
    """ab_test(..., epsilon := e): the differentially private release (``tasks.privacy.dp_ab_test``), recorded
    in the relation's privacy ledger before it is returned."""
    from ..tasks import privacy as pv
    from .privacy import spend

    if "covariate" in opts:
        raise InvalidArgument("covariate", "CUPED is not available with epsilon (its adjustment would need exact moments)",
                              "Leave covariate out for a private test, or drop epsilon for an exact one")
    epsilon = pv.check_epsilon(opts["epsilon"])
    bounds = pv.check_bounds(opts["bounds"], "bounds") if "bounds" in opts else None
    metric_type = rel.columns[rel.column(opts["metric"], "metric")].upper()
    if bounds is None and not re.fullmatch(r"BOOLEAN|U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?", metric_type):
        raise InvalidArgument("bounds", f"a private A/B test of the {metric_type} metric '{opts['metric']}' needs public "
                              "bounds (only 0/1 metrics, stored as BOOLEAN or integers, default to [0, 1])",
                              "Pass e.g. bounds := [0, 500]; values outside are clamped")
    rows, notes, spent = pv.dp_ab_test(codes, y, epsilon, bounds, control=opts.get("control"), alpha=alpha,
                                       labels=labels, split=opts.get("split"))
    spend(ctx, rel, spent, 0.0, "ab_test", None, {"metric": opts.get("metric"), "variant": opts.get("variant"),
                                                  "epsilon": epsilon, "bounds": bounds})
    return [dict(r, notes="; ".join(notes)) for r in rows]


@scalar_udf("wml_ab_sample_size", args=["DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE"], returns="BIGINT")
def ab_sample_size(ctx, baseline, mde, alpha, power):
    arrays = [pc.fill_null(pc.cast(a, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
              for a in (baseline, mde, alpha, power)]
    n = ab.sample_size(*arrays)
    valid = np.isfinite(n)
    return pa.array(np.ceil(np.where(valid, n, 0)).astype(np.int64), pa.int64(), mask=~valid)


@scalar_udf("wml_ab_power", args=["DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE"], returns="DOUBLE")
def ab_power(ctx, baseline, mde, n_per_arm, alpha):
    arrays = [pc.fill_null(pc.cast(a, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
              for a in (baseline, mde, n_per_arm, alpha)]
    p = ab.power(*arrays)
    return pa.array(p, pa.float64(), mask=~np.isfinite(p))
