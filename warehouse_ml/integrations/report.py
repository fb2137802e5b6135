"""``warehouse-ml report shop.duckdb --out report.html``: one self-contained HTML page of charts.

For whatever the database holds: the model registry; for each classifier, ROC and lift curves and a reliability
diagram (drawn from the hold-out scores stored with the model: rows it never trained on) and feature importance;
for regressors, predicted against actual on the hold-out; demand forecasts with their interval (forecast models, and tables that
look like daily demand); drift checks over time (``wml.monitoring``); segment profiles; A/B tests with
confidence intervals (tables with a variant column); recommender quality and catalogue coverage; key drivers (tables
written from ``key_drivers``) as a waterfall of contributions. Charts are PNGs drawn with matplotlib (Agg) and
inlined as base64, so the page needs no network and no other file. The database is opened read-only.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import logging
import os
import time
import warnings

import numpy as np

from ..binding.catalog import quote_ident
from ..errors import InvalidArgument, WmlError
from ..outputs import HTML_MARK, check_replaceable
from ..tasks.roles import DEMAND, KEY, PRE_PERIOD, SERIES_NAME, VARIANT, is_date_type

log = logging.getLogger("warehouse_ml")



def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class Report:
    def __init__(self, title: str):
        self.title = title
        self.sections: list[str] = []

    def section(self, heading: str, body: str) -> None:
        self.sections.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")

    @staticmethod
    def figure(b64: str, caption: str) -> str:
        return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    @staticmethod
    def table(columns: list[str], rows: list[tuple]) -> str:
        def cell(v):
            if isinstance(v, float):
                return f"{v:.4g}"
            if isinstance(v, dict):
                return ", ".join(f"{k}={cell(x)}" for k, x in list(v.items())[:6])
            return "" if v is None else str(v)

        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    @staticmethod
    def note(text: str) -> str:
        return f'<p class="note">{html.escape(text)}</p>'

    def render(self) -> str:
        nav = "".join(f"<li>{s.split('</h2>')[0].split('<h2>')[1]}</li>" for s in self.sections)
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{HTML_MARK}<title>{html.escape(self.title)}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0; color: #222; background: #f6f7f9; }}
header {{ background: #1f3a5f; color: white; padding: 18px 32px; }}
header h1 {{ margin: 0; font-size: 22px; }} header p {{ margin: 4px 0 0; opacity: .8; font-size: 13px; }}
main {{ max-width: 1100px; margin: 0 auto; padding: 16px 32px 48px; }}
section {{ background: white; border-radius: 8px; padding: 16px 20px; margin: 16px 0; box-shadow: 0 1px 3px rgba(0,0,0,.08); }}
h2 {{ font-size: 18px; margin: 0 0 12px; color: #1f3a5f; }}
figure {{ margin: 8px 0 16px; }} figure img {{ max-width: 100%; }} figcaption {{ font-size: 12px; color: #666; }}
table {{ border-collapse: collapse; font-size: 13px; width: 100%; }}
th, td {{ text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e7eb; }} th {{ background: #f0f3f7; }}
.note {{ color: #666; font-size: 13px; }} ul.toc {{ columns: 2; font-size: 14px; }}
</style></head><body>
<header><h1>{html.escape(self.title)}</h1><p>warehouse-ml report, {_dt.datetime.now():%Y-%m-%d %H:%M}</p></header>
<main><section><h2>Contents</h2><ul class="toc">{nav}</ul></section>
{''.join(self.sections)}
</main></body></html>
"""


# -- discovery -------------------------------------------------------------------------------------------------
def _tables(con) -> dict[tuple[str, str], dict[str, str]]:
    rows = con.execute(
        """SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()
           WHERE database_name = current_database() AND NOT internal ORDER BY schema_name, table_name, column_index""").fetchall()
    out: dict[tuple[str, str], dict[str, str]] = {}
    for s, t, c, ty in rows:
        out.setdefault((s, t), {})[c] = ty
    return out


def _qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def _active_models(con) -> list[dict]:
    from ..store import ModelStore

    store = ModelStore(con)
    out = []
    for row in store.listing():
        if row["is_active"]:
            try:
                sm = store.describe(row["model"])
            except WmlError:
                continue
            out.append({**row, "meta": sm.meta, "label": sm.label, "features_full": sm.features})
    return out


# -- sections --------------------------------------------------------------------------------------------------
def _registry(rep: Report, models: list[dict], con) -> None:
    rows = con.execute("SELECT model, version, task, algorithm, is_active, n_rows, metrics, created_at FROM ml_models() "
                       "ORDER BY model, version").fetchall()
    if not rows:
        rep.section("Models", rep.note("This database holds no models yet. Train one with e.g. "
                                       "FROM train_churn('user_features') or CREATE MODEL ... (BigQuery ML)."))
        return
    rep.section("Models", rep.table(["model", "version", "task", "algorithm", "active", "rows", "metrics", "trained"], rows))


def _holdout(rep: Report, m: dict, *keys: str) -> tuple[np.ndarray, ...] | str:
    """The hold-out scores stored with the model (rows it never trained on), or a note saying why there are none."""
    held = m["meta"].get("holdout") or {}
    if not all(k in held for k in keys):
        return rep.note(f"{m['model']} v{m['version']} was trained before warehouse-ml kept its hold-out scores, or "
                        "without a hold-out (test_size := 0): curves are drawn only from rows a model never trained "
                        "on. Retrain it to draw them.")
    return tuple(np.asarray(held[k], dtype=float) for k in keys)


def _classifier(rep: Report, con, m: dict) -> None:
    plt = _plt()
    from sklearn.metrics import roc_auc_score, roc_curve

    parts = []
    classes = m["meta"].get("classes") or []
    held = _holdout(rep, m, "score", "positive") if len(classes) == 2 else ()
    if isinstance(held, str):
        parts.append(held)
    elif held:
        p, y = held
        if len(np.unique(y)) == 2:
            fpr, tpr, _ = roc_curve(y, p)
            auc = roc_auc_score(y, p)
            order = np.argsort(-p, kind="stable")
            hits = np.cumsum(y[order])
            frac = np.arange(1, len(y) + 1) / len(y)
            lift = (hits / np.arange(1, len(y) + 1)) / y.mean()
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
            a1.plot(fpr, tpr, color="#1f77b4", lw=2, label=f"AUC {auc:.3f}")
            a1.plot([0, 1], [0, 1], color="#999", ls="--", lw=1)
            a1.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {m['model']}")
            a1.legend(loc="lower right")
            a2.plot(frac * 100, lift, color="#d62728", lw=2)
            a2.axhline(1, color="#999", ls="--", lw=1)
            a2.set(xlabel="% of rows targeted (highest score first)", ylabel="lift over random",
                   title=f"Lift: {m['model']} (positive = {classes[1]})")
            a2.set_xlim(0, 100)
            parts.append(rep.figure(_png(fig), f"{m['model']} v{m['version']} on {len(y):,} hold-out rows (rows it never "
                                    f"trained on). Top decile lift {lift[max(0, len(y) // 10 - 1)]:.2f}."))
            parts.append(_reliability(rep, m, p, y))
    parts.append(_importance(rep, con, m))
    rep.section(f"Classifier: {m['model']}", "".join(parts))


def _reliability(rep: Report, m: dict, p: np.ndarray, y: np.ndarray) -> str:
    """The reliability diagram of the hold-out probabilities: per tenth of the probability range, the observed
    rate of positives against the mean predicted probability (on the diagonal when calibrated), with the rows in
    each bin, and the table of those bins."""
    from ..tasks.supervised import calibration_bins, expected_calibration_error

    plt = _plt()
    n, predicted, observed = calibration_bins(y, p)
    filled = n > 0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="#999", ls="--", lw=1, label="perfectly calibrated")
    top.plot(predicted[filled], observed[filled], color="#1f77b4", marker="o", lw=2, label="hold-out rows")
    for x, o, k in zip(predicted[filled], observed[filled], n[filled]):
        top.annotate(f"{k:,}", (x, o), textcoords="offset points", xytext=(4, -10), fontsize=7, color="#555")
    top.set(ylabel=f"observed rate of {m['meta']['classes'][1]}", xlim=(0, 1), ylim=(0, 1),
            title=f"Calibration: {m['model']} (rows per bin marked)")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(np.arange(len(n)) / len(n), n, width=1 / len(n), align="edge", color="#7f7f7f", edgecolor="white")
    bottom.set(xlabel="predicted probability", ylabel="rows")
    brier = float(np.mean((p - y) ** 2))
    caption = (f"Reliability of {m['model']} v{m['version']} on {len(y):,} hold-out rows: Brier score {brier:.4f}, "
               f"expected calibration error {expected_calibration_error(y, p):.4f}")
    rows = [(f"{i / len(n):.1f}-{(i + 1) / len(n):.1f}", int(k), float(q), float(o))
            for i, (k, q, o) in enumerate(zip(n, predicted, observed)) if k]
    return rep.figure(_png(fig), caption) + rep.table(["predicted bin", "rows", "mean predicted", "observed rate"], rows)


def _importance(rep: Report, con, m: dict) -> str:
    plt = _plt()
    rows = con.execute("SELECT feature, importance, direction FROM ml_explain($1) ORDER BY importance DESC LIMIT 15",
                       [m["model"]]).fetchall()
    if not rows:
        return rep.note("No feature importance is stored for this model.")
    rows = rows[::-1]
    colors = {"increases": "#d62728", "decreases": "#2ca02c"}
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    ax.barh([r[0] for r in rows], [r[1] for r in rows], color=[colors.get(r[2], "#7f7f7f") for r in rows])
    ax.set(xlabel="importance", title=f"What drives {m['model']} (red: raises the prediction, green: lowers it)")
    return rep.figure(_png(fig), f"Feature importance of {m['model']} v{m['version']}")


def _regressor(rep: Report, con, m: dict) -> None:
    plt = _plt()
    parts = []
    held = _holdout(rep, m, "actual", "predicted")
    if isinstance(held, str):
        parts.append(held)
    elif len(held[0]):
        y, p = held
        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.scatter(y, p, s=6, alpha=0.4)
        lo, hi = np.nanmin([y.min(), p.min()]), np.nanmax([y.max(), p.max()])
        ax.plot([lo, hi], [lo, hi], color="#999", ls="--")
        ax.set(xlabel=f"actual {m['label']}", ylabel="predicted", title=f"{m['model']}: predicted vs actual")
        parts.append(rep.figure(_png(fig), f"{m['model']} on {len(y):,} hold-out rows (rows it never trained on)"))
    parts.append(_importance(rep, con, m))
    rep.section(f"Regression: {m['model']}", "".join(parts))


def _monitoring(rep: Report, con) -> None:
    """Each monitored model's drift checks over time: the skew effect size of every feature (and of the
    predictions) and the metric's decay against their thresholds, with the checks that passed them marked, and
    its updates and retrains. Checks run as significance tests (ks, chi_square: p-values) are not charted."""
    plt = _plt()
    rows = con.execute("""SELECT model, check_id, checked_at, feature, statistic, value, threshold, drifted, action
                          FROM wml.monitoring WHERE value IS NOT NULL AND threshold > 0
                            AND ((kind = 'skew' AND statistic IN ('psi', 'jensen_shannon')) OR kind = 'decay')
                          ORDER BY model, check_id""").fetchall()
    for model in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == model]
        series = dict.fromkeys((r[3], r[4]) for r in mine)
        fig, ax = plt.subplots(figsize=(10, 4))
        for feature, statistic in series:
            pts = [r for r in mine if (r[3], r[4]) == (feature, statistic)]
            ratio = [r[5] / r[6] for r in pts]  # every statistic as a multiple of its threshold: 1 = the alarm line
            ax.plot([r[2] for r in pts], ratio, marker="o", ms=3, lw=1.5, label=f"{feature} ({statistic})")
            hits = [(r[2], q) for r, q in zip(pts, ratio) if r[7]]
            if hits:
                ax.scatter(*zip(*hits), color="#d62728", zorder=3, s=30)
        ax.axhline(1, color="#d62728", ls="--", lw=1)
        ax.set(ylabel="statistic / threshold", title=f"Drift checks of {model} (above 1: drifted)")
        ax.legend(loc="upper left", fontsize=7, ncol=3)
        events = con.execute("""SELECT DISTINCT check_id, checked_at, action, version, statistic, note FROM wml.monitoring
                                WHERE model = $1 AND action IN ('update', 'retrain') ORDER BY check_id""", [model]).fetchall()
        rep.section(f"Monitoring: {model}", rep.figure(_png(fig), f"{len({r[1] for r in mine})} checks of {model} "
                    "(FROM ml_monitoring(model)); red dots passed their threshold")
                    + (rep.table(["check", "at", "action", "version", "how", "decision"], events) if events else ""))


def _segments(rep: Report, con, m: dict) -> None:
    plt = _plt()
    relation = m["meta"].get("relation")
    rows = con.execute("SELECT segment, n, share, description, feature_z FROM segment_profiles($1, model := $2) ORDER BY segment",
                       [relation, m["model"]]).fetchall()
    feats = list(rows[0][4].keys()) if rows and rows[0][4] else []
    parts = []
    if feats:
        z = np.array([[r[4].get(f, np.nan) for f in feats] for r in rows], dtype=float)
        fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(feats) + 2), 0.6 * len(rows) + 1.8))
        lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1
        im = ax.imshow(z, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(feats)), feats, rotation=35, ha="right")
        ax.set_yticks(range(len(rows)), [f"segment {r[0]} ({r[2]:.0%})" for r in rows])
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                if np.isfinite(z[i, j]):
                    ax.text(j, i, f"{z[i, j]:+.1f}", ha="center", va="center", fontsize=8)
        fig.colorbar(im, ax=ax, label="z-score vs all rows")
        ax.set_title(f"Segment profiles: {m['model']}")
        parts.append(rep.figure(_png(fig), f"How each segment of {relation} differs from the average (standard deviations)"))
    parts.append(rep.table(["segment", "rows", "share", "description"], [r[:4] for r in rows]))
    rep.section(f"Segments: {m['model']}", "".join(parts))


def _recommender(rep: Report, m: dict) -> None:
    plt = _plt()
    metrics = m["metrics"] or {}
    keys = [k for k in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage") if k in metrics]
    parts = []
    if keys:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(keys, [metrics[k] for k in keys], color=["#1f77b4"] * (len(keys) - ("coverage" in keys)) + (["#ff7f0e"] if "coverage" in keys else []))
        if "popular_ndcg_at_k" in metrics and "ndcg_at_k" in keys:
            ax.scatter(["ndcg_at_k"], [metrics["popular_ndcg_at_k"]], color="black", zorder=3, label="popularity baseline NDCG")
            ax.legend()
        ax.set_ylim(0, 1)
        ax.set_title(f"{m['model']} ({m['algorithm']}): hold-out quality at k={int(metrics.get('k', 10))} and catalogue coverage")
        parts.append(rep.figure(_png(fig), f"Coverage {metrics.get('coverage', float('nan')):.0%} of "
                                f"{int(metrics.get('n_items', 0)):,} items; {int(metrics.get('n_users', 0)):,} users"))
    else:
        parts.append(rep.note("No hold-out metrics are stored for this recommender."))
    rep.section(f"Recommendations: {m['model']}", "".join(parts))


def _ab_tests(rep: Report, con, tables) -> None:
    plt = _plt()
    for (schema, table), cols in tables.items():
        if schema == "wml":
            continue
        variant = next((c for c, t in cols.items() if VARIANT.match(c) and t in ("VARCHAR", "BOOLEAN", "INTEGER", "BIGINT")), None)
        if not variant:
            continue
        metrics = [c for c, t in cols.items() if c != variant and not (KEY.search(c) or PRE_PERIOD.match(c))
                   and (t in ("DOUBLE", "FLOAT", "INTEGER", "BIGINT", "BOOLEAN") or t.startswith("DECIMAL"))][:4]
        parts, summary = [], []
        rel = f"{schema}.{table}" if schema != "main" else table
        results = {}
        for metric in metrics:
            try:
                results[metric] = con.execute(
                    "SELECT variant, n, mean, relative_lift, relative_ci_low, relative_ci_high, p_value, significant, "
                    "is_control, test FROM ab_test($1, variant := $2, metric := $3)", [_quoted_name(schema, table), variant, metric]).fetchall()
            except Exception as e:  # noqa: BLE001  (one metric failing leaves the others)
                parts.append(rep.note(f"{metric}: {str(e).splitlines()[0][:200]}"))
        if not results:
            continue
        fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
        for ax, (metric, rows) in zip(axes[0], results.items()):
            treat = [r for r in rows if not r[8]]
            names = [r[0] for r in treat]
            lift = np.array([np.nan if r[3] is None else r[3] * 100 for r in treat], dtype=float)
            lo = np.array([np.nan if r[4] is None else r[4] * 100 for r in treat], dtype=float)
            hi = np.array([np.nan if r[5] is None else r[5] * 100 for r in treat], dtype=float)
            ax.errorbar(names, lift, yerr=[lift - lo, hi - lift], fmt="o", capsize=6, lw=2,
                        color="#2ca02c" if any(r[7] for r in treat) else "#555")
            ax.axhline(0, color="#999", ls="--", lw=1)
            ax.set(title=metric, ylabel="relative lift vs control (%)")
            for r in rows:
                summary.append((metric, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[9]))
        parts.insert(0, rep.figure(_png(fig), f"{rel}: lift of each variant over control with 95% confidence intervals"))
        parts.append(rep.table(["metric", "variant", "n", "mean", "rel. lift", "CI low", "CI high", "p", "significant", "test"], summary))
        rep.section(f"A/B test: {rel}", "".join(parts))


_DRIVER_COLUMNS = {"segment", "dimensions", "contribution", "share_of_change", "explained_by", "rank"}


def _key_drivers(rep: Report, con, tables) -> None:
    """Tables written from key_drivers: a waterfall of the largest non-overlapping contributions to the change."""
    plt = _plt()
    for (schema, table), cols in tables.items():
        if schema == "wml" or not _DRIVER_COLUMNS <= set(cols):
            continue
        rows = con.execute(f"SELECT segment, dimensions, contribution, share_of_change, explained_by, control_value, "
                           f"test_value, p_value, significant FROM {_qualified(schema, table)} ORDER BY rank").fetchall()
        shares = [(r[2], r[3]) for r in rows if r[3]]
        if not shares:
            continue
        total = shares[0][0] / shares[0][1]
        chosen: list[tuple] = []
        for r in rows:  # significant segments that share no rows add up: a dimension they both fix differs
            if r[8] and r[4] is None and len(chosen) < 6 and all(
                    any(k in c[1] and c[1][k] != v for k, v in r[1].items()) for c in chosen):
                chosen.append(r)
        steps = [(c[0].replace(" AND ", " & "), c[2]) for c in chosen]
        steps.append(("everything else", total - sum(c[2] for c in chosen)))
        fig, ax = plt.subplots(figsize=(10, 1.2 + 0.5 * len(steps)))
        level = 0.0
        for i, (label, value) in enumerate(steps):
            ax.barh(i, value, left=level, color="#2ca02c" if value >= 0 else "#d62728")
            level += value
        ax.barh(len(steps), total, color="#1f3a5f")
        ax.axvline(0, color="#999", lw=1)
        ax.set_yticks(range(len(steps) + 1), [lab for lab, _ in steps] + ["total change"], fontsize=8)
        ax.invert_yaxis()
        ax.set(xlabel="contribution to the change", title=f"{table}: where the change came from")
        body = rep.figure(_png(fig), f"{table}: the largest contributions of significant, non-overlapping segments "
                                     "to the total change, then the rest")
        body += rep.table(["segment", "before", "after", "share of change", "p", "significant", "explained by"],
                          [(r[0], r[5], r[6], r[3], r[7], r[8], r[4]) for r in rows[:10]])
        rep.section(f"Key drivers: {table}", body)


def _quoted_name(schema: str, table: str) -> str:
    return table if schema == "main" and '"' not in table and "." not in table else _qualified(schema, table)


def _forecast_sources(tables, models) -> list[dict]:
    out = []
    for m in models:
        if m["task"] == "forecast" and m["meta"].get("relation"):
            roles = m["meta"].get("roles") or {}
            from ..binding.catalog import split_name

            parts = split_name(m["meta"]["relation"])
            key = (parts[-2] if len(parts) > 1 else "main", parts[-1])
            if key in tables:
                out.append({"title": f"forecast model {m['model']}", "key": key, **roles})
    for (schema, table), cols in tables.items():
        if schema == "wml":
            continue
        dates = [c for c, t in cols.items() if is_date_type(t)]
        values = [c for c, t in cols.items() if DEMAND.search(c) and (t in ("DOUBLE", "INTEGER", "BIGINT", "FLOAT") or t.startswith("DECIMAL"))]
        items = [c for c, t in cols.items() if SERIES_NAME.search(c) and t == "VARCHAR"]
        if len(dates) == 1 and len(values) == 1 and len(items) <= 1:
            out.append({"title": f"{table}.{values[0]}", "key": (schema, table), "item": items[0] if items else None,
                        "date": dates[0], "value": values[0]})
    return out


def _forecasts(rep: Report, con, tables, models, n_items: int, horizon: int) -> None:
    import warehouse_ml as wml

    plt = _plt()
    for src in _forecast_sources(tables, models)[:3]:
        name = _qualified(*src["key"])
        item, date, value = src.get("item"), src["date"], src["value"]
        if item:
            top = [r[0] for r in con.execute(
                f"SELECT CAST({quote_ident(item)} AS VARCHAR) FROM {name} GROUP BY 1 ORDER BY sum({quote_ident(value)}) DESC, 1 "
                f"LIMIT {int(n_items)}").fetchall()]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the extra copy of a few series is fine
                data = con.execute(
                    f"SELECT CAST({quote_ident(item)} AS VARCHAR) AS item, CAST({quote_ident(date)} AS DATE) AS date, "
                    f"CAST({quote_ident(value)} AS DOUBLE) AS value FROM {name} "
                    f"WHERE CAST({quote_ident(item)} AS VARCHAR) IN (SELECT unnest($1::VARCHAR[]))", [top]).to_arrow_table()
        else:
            top = [None]
            data = con.sql(f"SELECT CAST({quote_ident(date)} AS DATE) AS date, CAST({quote_ident(value)} AS DOUBLE) AS value "
                           f"FROM {name}").to_arrow_table()
        # forecast on a private in-memory copy of just these series: the report never writes to the database
        mem = wml.connect(":memory:")
        try:
            mem.register("src", data)
            mem.execute("CREATE TABLE series AS SELECT * FROM src")
            fc = mem.execute("SELECT item, date, forecast, lower, upper, method FROM forecast_demand('series', $1, "
                             "item := $2, date := 'date', value := 'value', level := 0.95) ORDER BY item, date",
                             [int(horizon), "item" if item else None]).fetchall()
            hist = mem.execute("SELECT " + ("item" if item else "NULL") + ", date, sum(value) FROM series GROUP BY ALL ORDER BY 1, 2").fetchall()
        finally:
            mem.close()
        fig, axes = plt.subplots(len(top), 1, figsize=(10, 2.8 * len(top)), squeeze=False)
        for ax, key in zip(axes[:, 0], top):
            h = [r for r in hist if r[0] == key][-120:]
            f = [r for r in fc if r[0] == key]
            ax.plot([r[1] for r in h], [r[2] for r in h], color="#333", lw=1, label="history")
            if f:
                ax.fill_between([r[1] for r in f], [r[3] for r in f], [r[4] for r in f], color="#1f77b4", alpha=0.25, label="95% interval")
                ax.plot([r[1] for r in f], [r[2] for r in f], color="#1f77b4", lw=2, label=f"forecast ({f[0][5]})")
            ax.set_title(f"{src['title']}: {key}" if key is not None else src["title"], fontsize=10)
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper left", fontsize=8)
        rep.section(f"Forecast: {src['title']}", rep.figure(
            _png(fig), f"{horizon}-period forecast of the {len(top)} largest series of {src['key'][1]} with 95% intervals"))


# -- entry points ----------------------------------------------------------------------------------------------
def build_report(con, title: str, forecast_items: int = 3, horizon: int = 28) -> str:
    rep = Report(title)
    tables = _tables(con)
    models = _active_models(con)
    steps = [("models", lambda: _registry(rep, models, con))]
    for m in models:
        if m["task"] == "classification":
            steps.append((f"classifier {m['model']}", lambda m=m: _classifier(rep, con, m)))
        elif m["task"] == "regression":
            steps.append((f"regression {m['model']}", lambda m=m: _regressor(rep, con, m)))
        elif m["task"] == "segment":
            steps.append((f"segments {m['model']}", lambda m=m: _segments(rep, con, m)))
        elif m["task"] == "recommend":
            steps.append((f"recommender {m['model']}", lambda m=m: _recommender(rep, m)))
    if ("wml", "monitoring") in tables:
        steps.append(("monitoring", lambda: _monitoring(rep, con)))
    steps.append(("forecasts", lambda: _forecasts(rep, con, tables, models, forecast_items, horizon)))
    steps.append(("A/B tests", lambda: _ab_tests(rep, con, tables)))
    steps.append(("key drivers", lambda: _key_drivers(rep, con, tables)))
    for i, (name, step) in enumerate(steps, 1):
        t0 = time.perf_counter()
        log.info("report [%d/%d] %s ...", i, len(steps), name)
        try:
            step()
        except Exception as e:  # noqa: BLE001  (one broken section must not lose the rest of the report)
            log.warning("report: %s failed: %s", name, e)
            rep.section(f"{name} (not drawn)", rep.note(f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"))
        log.info("report [%d/%d] %s done in %.1fs", i, len(steps), name, time.perf_counter() - t0)
    return rep.render()


def write_report(db: str, out: str = "report.html", forecast_items: int = 3, horizon: int = 28,
                 force: bool = False) -> str:
    """Write the report of DuckDB file ``db`` to ``out``; returns the path written. An existing ``out`` is
    replaced only if an earlier report wrote it, or with ``force``."""
    import warehouse_ml as wml

    if not os.path.exists(db):
        raise InvalidArgument("db", f"no DuckDB file at {db!r}", "Pass the path of an existing database, e.g. shop.duckdb")
    if not isinstance(forecast_items, int) or not 1 <= forecast_items <= 20:
        raise InvalidArgument("--forecast-items", f"expected 1 to 20, got {forecast_items!r}", "Use e.g. --forecast-items 3")
    if not isinstance(horizon, int) or not 1 <= horizon <= 365:
        raise InvalidArgument("--horizon", f"expected 1 to 365 periods, got {horizon!r}", "Use e.g. --horizon 28")
    check_replaceable(out, "--out", force)
    con = wml.connect(db, read_only=True)
    try:
        page = build_report(con, f"{os.path.basename(db)}", forecast_items, horizon)
    finally:
        con.close()
    tmp = f"{out}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, out)
    return out
