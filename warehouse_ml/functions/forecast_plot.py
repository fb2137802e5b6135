"""plot_forecast: one item's history, forecast and band (and its drivers) drawn to a PNG."""
from __future__ import annotations

from ..errors import InvalidArgument
from .forecast_series import Roles, infer_roles


def plot_forecast(con, relation: str, item, horizon: int, out_png: str, *, item_col: str | None = None,
                  date: str | None = None, value: str | None = None, method: str = "auto", level: float = 0.95,
                  history: int = 180, features: list[str] | None = None, future: str | None = None,
                  holidays: str | None = None) -> str:
    """Write a PNG of one item's recent history (last ``history`` periods), forecast and ``level`` band.

    ``con`` is a connection with warehouse-ml installed (``wml.connect``); ``item`` is the item key as it
    appears in the item column (compared as text). With ``features`` (and their planned values in ``future``)
    and ``holidays`` the forecast uses them (forecast_demand's arguments), and a lower panel draws each feature
    over the history and the horizon. Returns ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..binding.catalog import resolve
    from ..outputs import PNG_METADATA

    rel = resolve(con, relation)
    roles = infer_roles(rel, item_col, date, value)
    opts = {"item": roles.item, "date": roles.date, "value": roles.value}
    if roles.item is None:
        where, params = "TRUE", []
    else:
        where, params = f"CAST({rel.q(roles.item)} AS VARCHAR) = $1", [str(item)]
    hist = con.execute(
        f"SELECT CAST({rel.q(roles.date)} AS DATE) AS d, sum(CAST({rel.q(roles.value)} AS DOUBLE)) AS v "
        f"FROM {rel.sql} WHERE {where} AND {rel.q(roles.date)} IS NOT NULL GROUP BY 1 ORDER BY 1", params).fetchall()
    if not hist:
        raise InvalidArgument("item", f"no rows of '{relation}' have item {item!r}",
                              f"Pick an item from: SELECT DISTINCT {roles.item} FROM {rel.table}")
    item_filter = "item IS NULL" if roles.item is None else "item = $item"
    fc = con.execute(
        f"SELECT date, forecast, lower, upper, method FROM forecast_demand($rel, $h, item := $ic, date := $dc, "
        f"value := $vc, method := $m, level := $lv, features := $fs, future := $fu, holidays := $ho) "
        f"WHERE {item_filter} ORDER BY date",
        {"rel": relation, "h": int(horizon), "ic": opts["item"], "dc": opts["date"], "vc": opts["value"],
         "m": method, "lv": float(level), "fs": features, "fu": future, "ho": holidays,
         **({} if roles.item is None else {"item": str(item)})}).fetchall()
    hist = hist[-history:]
    if features:
        fig, (ax, dax) = plt.subplots(2, 1, figsize=(10, 6), dpi=110, sharex=True, height_ratios=(3, 1))
        _plot_drivers(con, dax, rel, roles, where, params, features, future, hist[0][0] if hist else None)
    else:
        fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    ax.plot([r[0] for r in hist], [r[1] for r in hist], color="#333333", lw=1, label="history")
    if fc:
        d = [r[0] for r in fc]
        ax.fill_between(d, [r[2] for r in fc], [r[3] for r in fc], color="#4C72B0", alpha=0.25,
                        label=f"{int(round(level * 100))}% interval")
        ax.plot(d, [r[1] for r in fc], color="#4C72B0", lw=1.8, label=f"forecast ({fc[0][4]})")
    ax.set_title((f"{relation}: {item}" if roles.item else relation)
                 + (f" (drivers: {', '.join(features)}{', ' + holidays + ' holidays' if holidays else ''})"
                    if features else ""))
    ax.set_ylabel(roles.value)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out_png, metadata=PNG_METADATA)  # marked as ours: commands may replace it later
    plt.close(fig)
    return out_png


def _plot_drivers(con, ax, rel, roles: Roles, where: str, params: list, features: list[str], future: str | None,
                  since) -> None:
    """Each feature of one item over its history and, from ``future``, the horizon (dashed)."""
    from ..binding.catalog import resolve

    frel = resolve(con, future) if future else None
    for k, name in enumerate(features):
        color = f"C{k + 1}"
        for r, style, label in ((rel, "-", name), (frel, "--", f"{name} (planned)")):
            if r is None:
                continue
            col, d = r.column(name, "features"), r.column(roles.date, "date")
            cond = where if roles.item is None else f"CAST({r.q(r.column(roles.item, 'item'))} AS VARCHAR) = $1"
            pts = con.execute(f"SELECT CAST({r.q(d)} AS DATE), avg(CAST({r.q(col)} AS DOUBLE)) FROM {r.sql} "
                              f"WHERE {cond} GROUP BY 1 ORDER BY 1", params).fetchall()
            pts = [p for p in pts if since is None or p[0] >= since]
            ax.step([p[0] for p in pts], [p[1] for p in pts], style, where="post", color=color, lw=1.2, label=label)
    ax.set_ylabel("drivers")
    ax.legend(loc="upper left", fontsize=8)
