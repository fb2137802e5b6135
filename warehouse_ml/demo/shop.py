"""A seeded, deterministic simulation of an online shop, written into a DuckDB connection.

``generate_shop(con, users=5000, seed=0)`` creates the tables below (replacing them if they exist) and returns
the ground truth the simulation was built from, so every warehouse-ml function can be checked against a known
answer. Everything is vectorised NumPy: Python loops run over weeks (~90) and products (~300), never over
users, orders or events, so 5,000 users take a couple of seconds.

The generative story
--------------------
**Users.** Each user has a signup date (30% signed up in the year before ``start``; signups then grow over the
period), an acquisition ``channel``, a country and a device. Hidden per user: an order rate ``rate`` (orders per
week, log-normal, higher for email and referral users, lower for social and paid search), a discount
propensity ``disc_prop`` (share of orders that carry a discount, Beta distributed, higher for email users),
a support-ticket propensity per order, and category affinities (a Dirichlet draw concentrated on one or two of
ten categories).

**Orders, tickets and churn** are simulated week by week for all users at once. While a user is alive, the
number of orders in a week is Poisson(``rate``); each order is discounted with probability ``disc_prop``; each
order raises a support ticket with the user's ticket probability (plus a small baseline of tickets without
an order). At the end of every week an alive user churns with the discrete-time hazard

    h = 1 - exp(-h0 * exp(b_tickets * recent_tickets - b_discount * discount_share - b_rate * log(rate / median_rate)))

where ``recent_tickets`` is an exponentially decaying count of tickets (half-life ~6 weeks) and
``discount_share`` the smoothed share of the user's orders so far that carried a discount. A churned user
never orders again, so "no order in the 90 days after a date" is driven by recency, frequency, discounts and
support contacts, as in a real shop. The coefficients are returned under ``params``.

**Products** (~300) belong to ten categories with category price levels; popularity follows a Zipf law (a
long tail). Items in an order are drawn from the user's category affinities times product popularity; the
quantity is 1 + Poisson. An order's ``amount`` is what the customer paid: the gross value of its items minus
``discount`` (10-25% of gross on discounted orders); ``n_items`` is the number of units.

**Events** hold, per order item, a ``view``, a ``cart`` and a ``purchase`` (the purchase at ``order_ts``:
purchases equal ``order_items``), plus browsing views and abandoned carts drawn from the same affinities, so
collaborative filtering has real signal.

**Sessions**: each user browses at a rate tied to their order rate while alive. A session's purchase is
Bernoulli(sigmoid(eta)) with eta = a + traffic-source effect + b_pages * log(pages) + b_price *
log(viewed_price / median price) + mobile effect; ``added_to_cart`` is true for every purchase plus abandoned
carts. The coefficients are returned under ``params``. A known key driver is planted: in the last
``DRIVER_DAYS`` (14) days, paid-search sessions on mobile get ``DRIVER_CONV_EFFECT`` (-1.5) added to eta, so
conversion drops there and nowhere else (the random draws are the same, so nothing else changes).

**Support tickets** come from the weekly simulation above, with a topic each.

**Experiment**: every user is randomised 50/50 to A or B. A user's conversion probability ``p`` grows with
their order rate; B adds exactly ``lift_conversion`` (+2 points) to ``p``. Revenue of a converter is the
user's basket value times 1 + Poisson(2p) orders times Gamma noise with mean 1, and ``pre_revenue`` is spend in a pre-period from the same
latent quantities, so CUPED with ``pre_revenue`` reduces variance. True lifts are returned: conversion
points (exactly 0.02 in expectation) and revenue per user (0.02 x the mean basket value of the population).

**Daily sales** (``daily_sales``): per product per day from its launch (most products exist from ``start``;
some launch later, a few in the last weeks, so they have short histories): expected units = base level x
trend x weekly profile x yearly seasonality (with a year-end peak) x (price / base_price) ** elasticity.
Prices move in small monthly steps and drop 10-35% during random promotions. Units are Poisson, so tail items
(base level below ~0.3 a day) are intermittent with many zero days. Zero days are rows with ``units = 0``,
except for a few items that have missing days (gaps) to exercise gap filling. This is the all-channel sales
ledger per product; it is generated separately from the user-level ``orders``. The true elasticity of every
sku is in ``demo_truth_elasticity``.

**Inventory** (``inventory``): on-hand units per sku, a few to ~25 days of recent demand, some at zero.

``demo_truth(name, value)`` holds the scalar ground truth and parameters; the returned dict holds the same
plus the elasticities.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa

CHANNELS = np.array(["organic", "paid_search", "social", "email", "referral"])
CHANNEL_P = np.array([0.35, 0.25, 0.15, 0.15, 0.10])
CHANNEL_RATE_EFFECT = np.array([0.0, -0.15, -0.30, 0.25, 0.20])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "CA", "NL", "ES", "AU"])
COUNTRY_P = np.array([0.40, 0.15, 0.12, 0.10, 0.08, 0.05, 0.05, 0.05])
DEVICES = np.array(["mobile", "desktop", "tablet"])
DEVICE_P = np.array([0.55, 0.35, 0.10])
SOURCES = np.array(["organic", "paid_search", "social", "email", "referral", "direct"])
SOURCE_CONV_EFFECT = np.array([0.0, -0.2, -0.7, 0.6, 0.4, 0.3])
CATEGORIES = np.array(["electronics", "home", "beauty", "fashion", "sports", "toys", "books", "grocery", "garden", "pets"])
CATEGORY_PRICE = np.array([180.0, 60.0, 25.0, 45.0, 55.0, 30.0, 15.0, 8.0, 40.0, 22.0])
CATEGORY_ELASTICITY = np.array([-2.2, -1.6, -1.4, -1.9, -1.5, -1.7, -1.1, -0.8, -1.3, -1.0])
TOPICS = np.array(["delivery", "refund", "payment", "account", "product_quality"])
TOPIC_P = np.array([0.35, 0.25, 0.12, 0.10, 0.18])

# Churn hazard (per week) and its coefficients.
H0 = 0.022
B_TICKETS = 0.7
B_DISCOUNT = 1.6
B_RATE = 0.6
TICKET_DECAY = 0.5 ** (1 / 6)  # half-life of six weeks
# Session conversion model.
CONV_INTERCEPT = -2.4
CONV_B_PAGES = 0.8
CONV_B_PRICE = -0.6
CONV_B_MOBILE = -0.3
CART_EXTRA = 1.3
# Experiment.
LIFT_CONVERSION = 0.02
# A planted key driver: in the last DRIVER_DAYS days, paid-search sessions on mobile convert worse (log-odds shift).
DRIVER_DAYS = 14
DRIVER_CONV_EFFECT = -1.5

N_PRODUCTS = 300
_US_PER_DAY = 86_400_000_000


def _ts(day: np.ndarray, start: date, seconds: np.ndarray | None = None) -> pa.Array:
    """Microsecond timestamps from (fractional) day offsets."""
    base = int((datetime(start.year, start.month, start.day) - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    us = base + np.floor(np.asarray(day, dtype=np.float64) * _US_PER_DAY).astype(np.int64)
    if seconds is not None:
        us = us + (np.asarray(seconds) * 1_000_000).astype(np.int64)
    return pa.array(us, pa.timestamp("us"))


def _dates(day: np.ndarray, start: date) -> pa.Array:
    epoch = (start - date(1970, 1, 1)).days
    return pa.array((epoch + np.asarray(day, dtype=np.int64)).astype(np.int32), pa.date32())


def _cat(index: np.ndarray, labels: np.ndarray) -> pa.Array:
    """A string column from category codes, without building millions of Python/NumPy strings."""
    codes = pa.array(np.asarray(index, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(codes, pa.array(labels.tolist(), pa.string())).dictionary_decode()


def _write(con, name: str, table: pa.Table, order_by: str | None = None) -> None:
    tmp = f"__wml_demo_{name}"
    con.register(tmp, table)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM "{tmp}"' + (f" ORDER BY {order_by}" if order_by else ""))
    finally:
        con.unregister(tmp)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Sampler:
    """Draws products for many (user) rows at once: category from the user's affinities, product from the
    category's popularity."""

    def __init__(self, rng, affinity: np.ndarray, product_cat: np.ndarray, popularity: np.ndarray):
        self.rng = rng
        self.aff_cdf = np.cumsum(affinity, axis=1)
        self.aff_cdf[:, -1] = 1.0
        self.by_cat = []
        for c in range(len(CATEGORIES)):
            ids = np.flatnonzero(product_cat == c)
            cdf = np.cumsum(popularity[ids])
            self.by_cat.append((ids, cdf / cdf[-1]))

    def draw(self, user_idx: np.ndarray) -> np.ndarray:
        n = len(user_idx)
        u = self.rng.random(n)
        cat = np.zeros(n, dtype=np.int64)
        for c in range(self.aff_cdf.shape[1] - 1):  # vectorised inverse CDF over ten categories
            cat += u > self.aff_cdf[user_idx, c]
        out = np.empty(n, dtype=np.int64)
        v = self.rng.random(n)
        for c, (ids, cdf) in enumerate(self.by_cat):
            m = cat == c
            if m.any():
                out[m] = ids[np.minimum(np.searchsorted(cdf, v[m]), len(ids) - 1)]
        return out


def generate_shop(con, users: int = 5000, seed: int = 0, start: date = date(2023, 1, 1),
                  end: date = date(2024, 9, 30)) -> dict:
    """Build the demo shop in ``con`` (see the module docstring) and return its ground truth:
    ``{"experiment": {...}, "elasticity": {sku: e}, "params": {...}, "rows": {table: n}}``."""
    if int(users) < 10:
        raise ValueError("generate_shop: users must be at least 10")
    if end <= start + timedelta(days=120):
        raise ValueError("generate_shop: end must be at least 120 days after start")
    rng = np.random.default_rng(seed)
    n = int(users)
    n_days = (end - start).days + 1
    n_weeks = math.ceil(n_days / 7)

    # ---- users ---------------------------------------------------------------------------------------
    pre = rng.random(n) < 0.3
    signup = np.where(pre, -rng.integers(1, 366, n), np.floor((n_days - 30) * rng.random(n) ** (1 / 1.4)).astype(np.int64))
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_P)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_P)
    device = rng.choice(len(DEVICES), n, p=DEVICE_P)
    rate = np.exp(np.log(0.22) + CHANNEL_RATE_EFFECT[channel] + 0.7 * rng.standard_normal(n))
    median_rate = 0.22
    disc_prop = rng.beta(1.2 + 1.5 * (channel == 3), 4.0, n)
    ticket_p = np.clip(0.05 * np.exp(0.5 * rng.standard_normal(n)), 0, 0.5)
    affinity = rng.dirichlet(np.full(len(CATEGORIES), 0.25), n)
    basket_scale = np.exp(0.35 * rng.standard_normal(n))

    # ---- products ------------------------------------------------------------------------------------
    product_cat = np.concatenate([np.arange(len(CATEGORIES)), rng.integers(0, len(CATEGORIES), N_PRODUCTS - len(CATEGORIES))])
    rng.shuffle(product_cat)
    base_price = np.round(CATEGORY_PRICE[product_cat] * np.exp(0.45 * rng.standard_normal(N_PRODUCTS)), 2) + 0.99
    unit_cost = np.round(base_price * rng.uniform(0.35, 0.7, N_PRODUCTS), 2)
    rank = rng.permutation(N_PRODUCTS) + 1
    popularity = 1.0 / rank ** 1.1
    skus = np.array([f"SKU-{i:04d}" for i in range(1, N_PRODUCTS + 1)])
    product_id = np.arange(1, N_PRODUCTS + 1, dtype=np.int64)
    sampler = _Sampler(rng, affinity, product_cat, popularity)

    # ---- weekly simulation of orders, discounts, tickets and churn -------------------------------------
    alive = np.ones(n, dtype=bool)
    churn_week = np.full(n, -1, dtype=np.int64)
    recent_tickets = np.zeros(n)
    cum_orders = np.zeros(n)
    cum_disc = np.zeros(n)
    signup_week = np.floor_divide(signup, 7)
    o_week, o_user, o_count, o_disc = [], [], [], []
    t_week, t_user, t_count = [], [], []
    for w in range(n_weeks):
        active = alive & (signup_week <= w)
        k = rng.poisson(rate * active)
        d = rng.binomial(k, disc_prop)
        tk = rng.binomial(k, ticket_p) + rng.poisson(0.004 * active)
        nz = np.flatnonzero(k)
        o_week.append(np.full(len(nz), w)), o_user.append(nz), o_count.append(k[nz]), o_disc.append(d[nz])
        nzt = np.flatnonzero(tk)
        t_week.append(np.full(len(nzt), w)), t_user.append(nzt), t_count.append(tk[nzt])
        recent_tickets = recent_tickets * TICKET_DECAY + tk
        cum_orders += k
        cum_disc += d
        share = (cum_disc + 0.2) / (cum_orders + 1.0)
        hazard = H0 * np.exp(B_TICKETS * recent_tickets - B_DISCOUNT * share - B_RATE * np.log(rate / median_rate))
        churn_now = active & (rng.random(n) < 1 - np.exp(-hazard))
        churn_week[churn_now] = w
        alive &= ~churn_now
    end_day = np.where(churn_week >= 0, churn_week * 7 + 7, n_days).astype(np.float64)
    start_day = np.maximum(signup, 0).astype(np.float64)

    # ---- orders --------------------------------------------------------------------------------------
    week = np.concatenate(o_week)
    cnt = np.concatenate(o_count)
    dis = np.concatenate(o_disc)
    ord_user = np.repeat(np.concatenate(o_user), cnt)
    ord_week = np.repeat(week, cnt)
    # which of a user-week's orders are discounted: the first d of its k
    pos = np.arange(len(ord_user)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    ord_disc = pos < np.repeat(dis, cnt)
    ord_day = np.maximum(ord_week * 7 + 7 * rng.random(len(ord_user)), start_day[ord_user] + rng.random(len(ord_user)))
    keep = ord_day < n_days
    ord_user, ord_day, ord_disc = ord_user[keep], ord_day[keep], ord_disc[keep]
    order_idx = np.argsort(ord_day, kind="stable")
    ord_user, ord_day, ord_disc = ord_user[order_idx], ord_day[order_idx], ord_disc[order_idx]
    n_orders = len(ord_user)
    order_id = np.arange(1, n_orders + 1, dtype=np.int64)

    lines = 1 + np.minimum(rng.poisson(0.5 * basket_scale[ord_user]), 7)
    it_order = np.repeat(np.arange(n_orders), lines)
    it_user = ord_user[it_order]
    it_prod = sampler.draw(it_user)
    it_qty = 1 + rng.poisson(np.where(product_cat[it_prod] == 0, 0.05, 0.3))
    # a product drawn twice for one order becomes one line with the quantities added
    line_key, inverse = np.unique(it_order * N_PRODUCTS + it_prod, return_inverse=True)
    it_qty = np.bincount(inverse, weights=it_qty).astype(np.int64)
    it_order, it_prod = line_key // N_PRODUCTS, line_key % N_PRODUCTS
    it_user = ord_user[it_order]
    it_price = base_price[it_prod]
    gross = np.bincount(it_order, weights=it_qty * it_price, minlength=n_orders)
    units = np.bincount(it_order, weights=it_qty, minlength=n_orders).astype(np.int32)
    disc_rate = np.where(ord_disc, rng.choice([0.10, 0.15, 0.20, 0.25], n_orders), 0.0)
    discount = np.round(gross * disc_rate, 2)
    amount = np.round(gross - discount, 2)
    ord_ts = _ts(ord_day, start)

    # ---- support tickets -----------------------------------------------------------------------------
    tcnt = np.concatenate(t_count)
    tk_user = np.repeat(np.concatenate(t_user), tcnt)
    tk_day = np.maximum(np.repeat(np.concatenate(t_week), tcnt) * 7 + 7 * rng.random(len(tk_user)),
                        start_day[tk_user] + rng.random(len(tk_user)))
    keep = tk_day < n_days
    tk_user, tk_day = tk_user[keep], tk_day[keep]
    tk_order = np.argsort(tk_day, kind="stable")
    tk_user, tk_day = tk_user[tk_order], tk_day[tk_order]
    tk_topic = rng.choice(len(TOPICS), len(tk_user), p=TOPIC_P)

    # ---- events: view -> cart -> purchase per order item, plus browsing and abandoned carts ------------
    it_day = ord_day[it_order]
    life = np.maximum(np.minimum(end_day, n_days) - start_day, 1.0)
    n_items_user = np.bincount(it_user, minlength=n)
    n_browse = rng.poisson(3.0 * n_items_user + 2.0 * (life / 30) * rate + 1.0)
    b_user = np.repeat(np.arange(n), n_browse)
    b_day = np.minimum(start_day[b_user] + life[b_user] * rng.random(len(b_user)), n_days - 1e-6)
    b_prod = sampler.draw(b_user)
    n_aband = rng.poisson(0.4 * n_items_user + 0.2)
    a_user = np.repeat(np.arange(n), n_aband)
    a_day = np.minimum(start_day[a_user] + life[a_user] * rng.random(len(a_user)), n_days - 1e-6)
    a_prod = sampler.draw(a_user)
    minute = 1.0 / 1440
    cart_day = it_day - minute * rng.uniform(1, 30, len(it_day))
    view_day = cart_day - minute * rng.uniform(1, 120, len(it_day))
    a_view_day = a_day - minute * rng.uniform(1, 60, len(a_day))
    ev_user = np.concatenate([it_user, it_user, it_user, b_user, a_user, a_user])
    ev_prod = np.concatenate([it_prod, it_prod, it_prod, b_prod, a_prod, a_prod])
    ev_type = np.concatenate([np.full(len(it_user), 2), np.full(len(it_user), 1), np.zeros(len(it_user), int),
                              np.zeros(len(b_user), int), np.full(len(a_user), 1), np.zeros(len(a_user), int)])
    ev_day = np.concatenate([it_day, cart_day, view_day, b_day, a_day, a_view_day])
    ev_order = np.lexsort((ev_type, ev_day))
    event_types = np.array(["view", "cart", "purchase"])

    # ---- sessions ------------------------------------------------------------------------------------
    n_sess = rng.poisson(life / 7 * (0.15 + 2.5 * rate))
    s_user = np.repeat(np.arange(n), n_sess)
    ns = len(s_user)
    s_day = np.minimum(start_day[s_user] + life[s_user] * rng.random(ns), n_days - 1e-6)
    own = rng.random(ns) < 0.6
    user_src = np.array([0, 1, 2, 3, 4])[channel[s_user]]
    s_src = np.where(own, user_src, rng.choice(len(SOURCES), ns, p=[0.3, 0.2, 0.15, 0.1, 0.05, 0.2]))
    s_dev = np.where(rng.random(ns) < 0.8, device[s_user], rng.choice(len(DEVICES), ns, p=DEVICE_P))
    s_pages = (1 + rng.poisson(np.array([4.0, 3.0, 2.0, 5.0, 4.5, 5.0])[s_src])).astype(np.int32)
    s_prod = sampler.draw(s_user)
    s_price = np.round(base_price[s_prod] * np.exp(0.05 * rng.standard_normal(ns)), 2)
    median_price = float(np.median(base_price))
    eta = (CONV_INTERCEPT + SOURCE_CONV_EFFECT[s_src] + CONV_B_PAGES * np.log(s_pages)
           + CONV_B_PRICE * np.log(s_price / median_price) + CONV_B_MOBILE * (s_dev == 0)
           + DRIVER_CONV_EFFECT * ((s_src == 1) & (s_dev == 0) & (s_day >= n_days - DRIVER_DAYS)))
    s_purchased = rng.random(ns) < _sigmoid(eta)
    s_cart = s_purchased | (rng.random(ns) < _sigmoid(eta + CART_EXTRA))
    s_order = np.argsort(s_day, kind="stable")

    # ---- experiment ----------------------------------------------------------------------------------
    z = (np.log(rate) - np.log(rate).mean()) / np.log(rate).std()
    p_a = np.clip(_sigmoid(-2.2 + 1.4 * z), 0.005, 0.95)
    variant_b = rng.random(n) < 0.5
    p = p_a + LIFT_CONVERSION * variant_b
    converted = (rng.random(n) < p).astype(np.int32)
    basket_value = 60.0 * basket_scale * np.exp(0.3 * z)
    repeat = 1 + rng.poisson(2 * p_a)  # orders of a converter in the test period (independent of the variant)
    revenue = np.round(converted * repeat * basket_value * rng.gamma(8.0, 0.125, n), 2)
    pre_orders = rng.poisson(12 * p_a)
    pre_revenue = np.round(pre_orders * basket_value * rng.gamma(8.0, 0.125, n), 2)
    lift_revenue = float(np.mean(LIFT_CONVERSION * basket_value * (1 + 2 * p_a)))

    # ---- daily sales ---------------------------------------------------------------------------------
    days = np.arange(n_days)
    dow = (start.weekday() + days) % 7
    doy = ((start - date(start.year, 1, 1)).days + days) % 365
    elasticity = np.round(CATEGORY_ELASTICITY[product_cat] + 0.35 * rng.standard_normal(N_PRODUCTS), 3)
    elasticity = np.minimum(elasticity, -0.2)
    level = 25.0 * rank.astype(np.float64) ** -0.6 * np.exp(0.3 * rng.standard_normal(N_PRODUCTS))
    tail = rank > 0.8 * N_PRODUCTS  # the long tail sells a fraction of a unit a day: intermittent demand
    level[tail] = rng.uniform(0.03, 0.3, tail.sum())
    trend = rng.normal(0.1, 0.25, N_PRODUCTS)
    amp = rng.uniform(0.05, 0.4, N_PRODUCTS)
    peak = rng.integers(0, 365, N_PRODUCTS)
    weekend = rng.uniform(-0.1, 0.35, N_PRODUCTS)
    launch = np.where(rng.random(N_PRODUCTS) < 0.75, 0, rng.integers(30, n_days - 20, N_PRODUCTS))
    launch[rng.choice(N_PRODUCTS, 8, replace=False)] = n_days - rng.integers(14, 45, 8)  # very short histories
    gap_items = set(rng.choice(np.flatnonzero(launch == 0), 6, replace=False).tolist())
    year_end = np.exp(-0.5 * ((((doy - 335) + 182) % 365 - 182) / 12.0) ** 2)  # late-November to December peak
    ds_sku, ds_day, ds_units, ds_price, ds_cost = [], [], [], [], []
    for i in range(N_PRODUCTS):
        d = days[launch[i]:]
        m = len(d)
        blocks = rng.normal(0, 0.04, m // 28 + 2)
        price = base_price[i] * (1 + blocks[(d - d[0]) // 28])
        promo = np.zeros(m, dtype=bool)
        cut = np.zeros(m)
        for _ in range(rng.poisson(m / 55)):
            s0 = rng.integers(0, m)
            ln = rng.integers(3, 11)
            promo[s0:s0 + ln] = True
            cut[s0:s0 + ln] = rng.uniform(0.10, 0.35)
        price = np.round(price * (1 - cut), 2)
        seas = (1 + amp[i] * np.cos(2 * np.pi * (doy[d] - peak[i]) / 365.25)) * (1 + 0.8 * amp[i] * year_end[d])
        weekly = 1 + weekend[i] * (dow[d] >= 5)
        ramp = 1 - np.exp(-(d - d[0] + 1) / 10.0) if launch[i] > 0 else 1.0
        mu = (level[i] * np.exp(trend[i] * d / 365.25) * seas * weekly * ramp
              * (price / base_price[i]) ** elasticity[i])
        units_i = rng.poisson(mu).astype(np.float64)
        keep = np.ones(m, dtype=bool)
        if i in gap_items:
            keep = rng.random(m) > 0.05
        ds_sku.append(np.full(keep.sum(), i)), ds_day.append(d[keep]), ds_units.append(units_i[keep])
        ds_price.append(price[keep]), ds_cost.append(np.full(keep.sum(), unit_cost[i]))
    ds_sku = np.concatenate(ds_sku)
    ds_day = np.concatenate(ds_day)
    ds_units = np.concatenate(ds_units)
    recent = ds_day >= n_days - 28
    mean_recent = np.bincount(ds_sku[recent], weights=ds_units[recent], minlength=N_PRODUCTS) / 28
    on_hand = np.round(mean_recent * rng.uniform(2, 25, N_PRODUCTS))
    on_hand[rng.random(N_PRODUCTS) < 0.08] = 0

    # ---- write ---------------------------------------------------------------------------------------
    uid = np.arange(1, n + 1, dtype=np.int64)
    _write(con, "users", pa.table({
        "user_id": uid, "signup_date": _dates(signup, start), "channel": _cat(channel, CHANNELS),
        "country": _cat(country, COUNTRIES), "device": _cat(device, DEVICES)}))
    _write(con, "products", pa.table({
        "product_id": product_id, "sku": skus, "category": _cat(product_cat, CATEGORIES),
        "base_price": base_price, "unit_cost": unit_cost}))
    _write(con, "orders", pa.table({
        "order_id": order_id, "user_id": uid[ord_user], "order_ts": ord_ts, "amount": amount,
        "discount": discount, "n_items": units}))
    _write(con, "order_items", pa.table({
        "order_id": order_id[it_order], "product_id": product_id[it_prod], "qty": it_qty.astype(np.int32),
        "unit_price": it_price}))
    _write(con, "sessions", pa.table({
        "session_id": np.arange(1, ns + 1, dtype=np.int64), "user_id": uid[s_user[s_order]],
        "started_at": _ts(s_day[s_order], start), "traffic_source": _cat(s_src[s_order], SOURCES),
        "device": _cat(s_dev[s_order], DEVICES), "pages": s_pages[s_order], "viewed_price": s_price[s_order],
        "added_to_cart": s_cart[s_order], "purchased": s_purchased[s_order]}))
    _write(con, "events", pa.table({
        "user_id": uid[ev_user[ev_order]], "product_id": product_id[ev_prod[ev_order]],
        "event_type": _cat(ev_type[ev_order], event_types), "ts": _ts(ev_day[ev_order], start)}))
    _write(con, "support_tickets", pa.table({
        "ticket_id": np.arange(1, len(tk_user) + 1, dtype=np.int64), "user_id": uid[tk_user],
        "created_at": _ts(tk_day, start), "topic": _cat(tk_topic, TOPICS)}))
    _write(con, "experiment", pa.table({
        "user_id": uid, "variant": _cat(variant_b, np.array(["A", "B"])), "converted": converted,
        "revenue": revenue, "pre_revenue": pre_revenue}))
    _write(con, "daily_sales", pa.table({
        "sku": _cat(ds_sku, skus), "day": _dates(ds_day, start), "units": ds_units,
        "price": np.concatenate(ds_price), "unit_cost": np.concatenate(ds_cost)}), order_by="sku, day")
    _write(con, "inventory", pa.table({"sku": skus, "on_hand": on_hand}))
    _write(con, "demo_truth_elasticity", pa.table({"sku": skus, "elasticity": elasticity}))

    experiment = {
        "lift_conversion": LIFT_CONVERSION,
        "lift_conversion_points": LIFT_CONVERSION * 100,
        "lift_revenue_per_user": lift_revenue,
        "baseline_conversion": float(p_a.mean()),
        "baseline_revenue_per_user": float(np.mean(p_a * basket_value * (1 + 2 * p_a))),
    }
    params = {
        "users": n, "seed": seed, "n_products": N_PRODUCTS,
        "churn_h0_weekly": H0, "churn_b_tickets": B_TICKETS, "churn_b_discount": B_DISCOUNT,
        "churn_b_rate": B_RATE, "churn_ticket_half_life_weeks": 6.0, "median_rate_per_week": median_rate,
        "conv_intercept": CONV_INTERCEPT, "conv_b_log_pages": CONV_B_PAGES, "conv_b_log_price": CONV_B_PRICE,
        "conv_b_mobile": CONV_B_MOBILE, "conv_median_price": median_price,
        "driver_days": DRIVER_DAYS, "driver_conv_effect_paid_search_mobile": DRIVER_CONV_EFFECT,
        **{f"conv_source_{s}": float(e) for s, e in zip(SOURCES, SOURCE_CONV_EFFECT)},
        "churned_users_by_end": int((churn_week >= 0).sum()),
    }
    rows = {"users": n, "products": N_PRODUCTS, "orders": n_orders, "order_items": len(it_order),
            "sessions": ns, "events": len(ev_user), "support_tickets": len(tk_user), "experiment": n,
            "daily_sales": len(ds_sku), "inventory": N_PRODUCTS}
    truth_rows = ([(f"experiment.{k}", float(v)) for k, v in experiment.items()]
                  + [(f"params.{k}", float(v)) for k, v in params.items()]
                  + [(f"rows.{k}", float(v)) for k, v in rows.items()])
    _write(con, "demo_truth", pa.table({"name": [r[0] for r in truth_rows],
                                        "value": pa.array([r[1] for r in truth_rows], pa.float64())}))
    return {"experiment": experiment, "elasticity": dict(zip(skus.tolist(), elasticity.tolist())),
            "params": params, "rows": rows}
