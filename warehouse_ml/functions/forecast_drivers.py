"""Drivers of the global forecasting model: features (with their planned values), holidays and a user's events.

``load_drivers`` turns forecast_demand's ``features``/``future``/``holidays``/``events`` into the arrays of
``tasks.forecast.Drivers``: one value per series and period over the history and over the horizon.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..binding.catalog import Relation, is_numeric_type
from ..errors import AmbiguousColumn, InvalidArgument
from ..tasks import forecast as K
from ..tasks.roles import is_date_type
from .forecast_series import Roles, SeriesData, infer_roles


def _codes_and_offsets(data: SeriesData, tbl: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Series code (-1: an item the history lacks) and panel column of each (item, d) row of ``tbl``."""
    pos = pc.index_in(tbl.column("item").combine_chunks(), value_set=data.names).fill_null(-1)
    code = pos.to_numpy(zero_copy_only=False).astype(np.int64)
    day = tbl.column("d").combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    per = K.period_index(day, data.panel.freq)
    return code, per - data.panel.start[np.clip(code, 0, None)]


def _driver_values(ctx, rel: Relation, roles: Roles, features: list[str], argument: str) -> pa.Table:
    """Per (item as text, date): the mean of each feature and its NULL count, read with quoted names."""
    item_sql = f"CAST({rel.q(roles.item)} AS VARCHAR)" if roles.item else "CAST(NULL AS VARCHAR)"
    d = rel.q(roles.date)
    cols = ", ".join(f"avg(CAST({rel.q(f)} AS DOUBLE)) AS f{k}, count(*) - count({rel.q(f)}) AS null{k}"
                     for k, f in enumerate(features))
    tbl = ctx.read_arrow(f"SELECT {item_sql} AS item, CAST({d} AS DATE) AS d, {cols} FROM {rel.sql} "
                         f"WHERE {d} IS NOT NULL GROUP BY 1, 2")
    for k, f in enumerate(features):
        nulls = int(pc.sum(tbl.column(f"null{k}")).as_py() or 0)
        if nulls:
            raise InvalidArgument(argument, f"column '{f}' of '{rel.name}' has {nulls} NULL value(s)",
                                  f"Fill them (e.g. coalesce({f}, 0) in a view) so every date has a value")
    return tbl


MAX_EVENTS = 100


def _events(ctx, name: str, roles: Roles, data: SeriesData, h: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """0/1 flags of a user's event calendar (a relation with a date, an event name and optionally the item):
    ``(N, T, E)`` over the history, ``(N, h, E)`` over the horizon and the E event names. An event row without
    an item (no item column, or NULL in it) applies to every series."""
    rel = ctx.relation(name, "events")
    cols = rel.columns
    dates = [c for c, t in cols.items() if is_date_type(t)]
    if not dates:
        raise InvalidArgument("events", f"relation '{rel.name}' has no DATE or TIMESTAMP column "
                              f"(columns: {', '.join(f'{c} {t}' for c, t in cols.items())})",
                              "Give it the date of each event as a DATE, e.g. CAST(day AS DATE) AS day in a view")
    if len(dates) > 1:
        raise AmbiguousColumn(rel.name, "events", "event date (keep one DATE column)", dates)
    item = None
    if roles.item is not None and roles.item.lower() in {c.lower() for c in cols}:
        item = rel.column(roles.item, "events")
    texts = [c for c, t in cols.items() if c not in (item, dates[0]) and t.upper() == "VARCHAR"]
    if len(texts) != 1:
        problem = (f"relation '{rel.name}' has no text column naming the event" if not texts else
                   f"relation '{rel.name}' has {len(texts)} text columns ({', '.join(texts)}); one names the event")
        raise InvalidArgument("events", problem, "Keep the date, one VARCHAR column with the event's name and "
                              f"optionally '{roles.item or 'the item'}' (the history's item column) in a view")
    item_sql = f"CAST({rel.q(item)} AS VARCHAR)" if item else "CAST(NULL AS VARCHAR)"
    tbl = ctx.read_arrow(f"SELECT DISTINCT {item_sql} AS item, CAST({rel.q(dates[0])} AS DATE) AS d, "
                         f"{rel.q(texts[0])} AS event FROM {rel.sql} WHERE {rel.q(dates[0])} IS NOT NULL "
                         f"AND {rel.q(texts[0])} IS NOT NULL")
    enc = tbl.column("event").combine_chunks().dictionary_encode()
    names = enc.dictionary.to_pylist()
    if len(names) > MAX_EVENTS:
        raise InvalidArgument("events", f"relation '{rel.name}' names {len(names)} different events, more than "
                              f"{MAX_EVENTS}", "Group them into kinds (e.g. 'sale', 'sports final') in a view")
    panel = data.panel
    N, T = panel.y.shape
    hist, fut = np.zeros((N, T, len(names))), np.zeros((N, h, len(names)))
    code, off = _codes_and_offsets(data, tbl)
    event = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    everyone = tbl.column("item").combine_chunks().is_null().to_numpy(zero_copy_only=False)
    # an event of every series: one (series, offset) per series, the offset from that series' own start
    per = off + panel.start[np.clip(code, 0, None)]
    all_series = np.nonzero(everyone)[0]
    series = np.concatenate([np.repeat(np.arange(N), len(all_series)), code[~everyone]])
    off = np.concatenate([(per[all_series][None, :] - panel.start[:, None]).ravel(), off[~everyone]])
    event = np.concatenate([np.tile(event[all_series], N), event[~everyone]])
    ok = series >= 0
    series, off, event = series[ok], off[ok], event[ok]
    lens = panel.lens[series]
    past = (off >= 0) & (off < lens)
    hist[series[past], off[past], event[past]] = 1.0
    ahead = (off >= lens) & (off < lens + h)
    fut[series[ahead], off[ahead] - lens[ahead], event[ahead]] = 1.0
    return hist, fut, names


def load_drivers(ctx, rel: Relation, data: SeriesData, opts: dict, h: int) -> K.Drivers | None:
    """Drivers of ``method := 'gbm'`` (or of ``auto``, which then considers it) from ``features``, ``future``,
    ``holidays`` and ``events``; None when none is given."""
    features, future, country, events = (opts.get(k) for k in ("features", "future", "holidays", "events"))
    if not features and future is None and country is None and events is None:
        return None
    features = features or []
    roles = infer_roles(rel, opts.get("item"), opts.get("date"), opts.get("value"))
    features = [rel.column(f, "features") for f in features]
    for f in features:
        if not is_numeric_type(rel.columns[f]) and rel.columns[f].upper() != "BOOLEAN":
            raise InvalidArgument("features", f"column '{f}' has type {rel.columns[f]}, not a number or boolean",
                                  "Name numeric driver columns (a price, a 0/1 promotion flag)")
    panel = data.panel
    N, T = panel.y.shape
    F = len(features)
    hist, fut = np.full((N, T, F), np.nan), np.full((N, h, F), np.nan)
    if F:
        if future is None:
            raise InvalidArgument("future", "features need their values over the horizon",
                                  "Pass future := 'plan', a relation with item, date and the same columns for the "
                                  "forecast dates (planned prices, the promotion calendar)")
        frel = ctx.relation(future, "future")
        for need in [c for c in (roles.item, roles.date) if c] + features:
            if need.lower() not in {c.lower() for c in frel.columns}:
                raise InvalidArgument("future", f"relation '{frel.name}' has no column '{need}'",
                                      f"Add '{need}' to it: the future needs the history's item, date and feature "
                                      "columns under the same names")
        tbl = _driver_values(ctx, rel, roles, features, "features")
        code, off = _codes_and_offsets(data, tbl)
        ok = (code >= 0) & (off >= 0) & (off < T)
        for k in range(F):
            hist[code[ok], off[ok], k] = tbl.column(f"f{k}").to_numpy(zero_copy_only=False)[ok]
        froles = Roles(frel.column(roles.item, "future") if roles.item else None, frel.column(roles.date, "future"),
                       roles.value)
        ftbl = _driver_values(ctx, frel, froles, [frel.column(f, "future") for f in features], "future")
        code, off = _codes_and_offsets(data, ftbl)
        off = off - panel.lens[np.clip(code, 0, None)]
        ok = (code >= 0) & (off >= 0) & (off < h)
        for k in range(F):
            fut[code[ok], off[ok], k] = ftbl.column(f"f{k}").to_numpy(zero_copy_only=False)[ok]
        missing = (panel.n_obs > 0)[:, None] & np.isnan(fut[:, :, 0])
        if missing.any():
            i, k = map(int, np.argwhere(missing)[0])
            day = K.period_dates(panel.start[i] + panel.lens[i] + k, panel.freq, panel.anchor[i])
            raise InvalidArgument("future", f"'{frel.name}' does not cover the horizon: no row for item "
                                  f"{data.names[i].as_py()!r} on {np.datetime64(int(day), 'D')} "
                                  f"({int(missing.sum())} (item, date) pairs missing)",
                                  f"Give every item a row for each of the {h} forecast dates")
    holidays = np.zeros(0, np.int64)
    if country is not None:
        last = K.period_dates(panel.start + panel.lens + h, panel.freq, panel.anchor)
        try:
            holidays = K.holiday_days(country, int(panel.anchor.min()), int(last.max()))
        except NotImplementedError:
            raise InvalidArgument("holidays", f"unknown country code {country!r}",
                                  "Pass an ISO 3166 code the holidays package knows, e.g. 'US', 'GB', 'DE'") from None
    names = list(features)
    if events is not None:
        ehist, efut, enames = _events(ctx, events, roles, data, h)
        hist, fut = np.concatenate([hist, ehist], axis=2), np.concatenate([fut, efut], axis=2)
        names += [e if e not in features else f"event {e}" for e in enames]
    return K.Drivers(hist, fut, holidays, tuple(names))
