"""Privacy in SQL: DP aggregates (noise, suppression, bounding), budgets across reopen, the BigQuery spelling,
DP A/B tests and segment profiles, pseudonyms, and personal data kept out of models."""
from __future__ import annotations

import hashlib
import hmac

import duckdb
import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from warehouse_ml.tasks import abtest as ab
from warehouse_ml.tasks import privacy as pv
from warehouse_ml.tasks.segment import simulate_users


def _orders(con, n_users=400, seed=0):
    """Orders of many users in three big channels, plus a channel of two users with many orders each."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for _ in range(rng.integers(1, 4)):
            rows.append((u, ["web", "app", "store"][u % 3], float(rng.gamma(2, 40)), 10 + u % 3))
    for u in (10_001, 10_002):
        rows += [(u, "whale", 480.0, 99)] * 300
    df = pd.DataFrame(rows, columns=["user_id", "channel", "revenue", "store_id"])
    con.execute("CREATE OR REPLACE TABLE orders AS SELECT * FROM df")
    return df


def test_opendp_noise_spread_matches_stated_scale():
    """5000 independent draws of each mechanism: the spread is what the stated scale says (Laplace(b) has
    standard deviation b * sqrt(2)) and the 95% interval half-width b * ln 20 holds 95% of them."""
    truth = np.full(5000, 1234)
    counts = pv.laplace(truth, sensitivity=2, epsilon=0.5, integer=True)
    assert counts.scale == 4.0 and counts.epsilon == pytest.approx(0.5)
    sums = pv.laplace(truth.astype(float), sensitivity=500.0, epsilon=0.25)
    assert sums.scale == pytest.approx(2000.0) and sums.epsilon == pytest.approx(0.25)
    for noisy in (counts, sums):
        err = noisy.values - truth
        assert np.std(err) == pytest.approx(noisy.scale * np.sqrt(2), rel=0.1)
        assert abs(np.mean(err)) < 4 * noisy.scale * np.sqrt(2) / np.sqrt(5000)
        assert np.mean(np.abs(err) <= noisy.scale * pv.LAPLACE_95) == pytest.approx(0.95, abs=0.02)  # discrete: 0.944


def test_dp_aggregate_releases_vary_at_the_stated_scale(con):
    df = _orders(con)
    true_count = len(df)
    counts, scales, covered = [], set(), 0
    for _ in range(60):
        rows = con.sql("FROM dp_aggregate('orders', metrics := ['count', 'sum(revenue)'], "
                       "bounds := {'revenue': [0, 500]}, epsilon := 1)").fetchall()
        got = {r[0]: r for r in rows}  # metric, value, noise_scale, ci_low, ci_high, epsilon, mechanism, notes
        counts.append(got["count"][1])
        scales.add((got["count"][2], got["sum(revenue)"][2]))
        covered += got["count"][3] <= true_count <= got["count"][4]
    assert scales == {(2.0, 1000.0)}  # each row is its own unit: sensitivity 1 and 500, epsilon 1/2 each
    assert np.std(counts) == pytest.approx(2.0 * np.sqrt(2), rel=0.45)
    assert abs(np.mean(counts) - true_count) < 4 * 2.0 * np.sqrt(2) / np.sqrt(60)
    assert covered >= 49  # the discrete interval holds 94% of draws


def test_rare_groups_are_suppressed_and_units_bounded(con):
    df = _orders(con)
    seen = set()
    for _ in range(10):
        out = con.sql("FROM dp_aggregate('orders', group_by := ['channel', 'store_id'], metrics := ['count', "
                      "'avg(revenue)', 'median(revenue)'], bounds := {'revenue': [0, 500]}, epsilon := 2, "
                      "delta := 1e-6, privacy_unit := 'user_id')").df()
        seen |= set(out.channel)
        counts = out[out.metric == "count"].set_index("channel")["value"]
        assert set(counts.index) == {"web", "app", "store"}
        assert (counts.between(100, 180)).all()  # ~133 users each; one order counted per user and group
    assert "whale" not in seen  # two people with 600 orders never make a group appear
    assert str(out.store_id.dtype) == "int64"  # keys keep their type
    row = out[(out.metric == "avg(revenue)") & (out.channel == "web")].iloc[0]
    assert row.ci_low < row.value < row.ci_high and row.noise_scale > 0
    assert "suppressed" in row.notes and " of 4 groups" not in row.notes  # how many exist is not released
    # several rows and groups per unit: each user gives at most 2 of their 1-3 orders; the count's noise is
    # calibrated to 3 groups x 2 rows (L1 sensitivity 6) with half of epsilon 2
    wide = con.sql("FROM dp_aggregate('orders', group_by := ['channel'], epsilon := 2, privacy_unit := 'user_id', "
                   "max_groups_per_unit := 3, max_rows_per_unit := 2)").df().set_index("channel")
    n_exact = df[df.channel != "whale"].groupby(["channel", "user_id"]).size().clip(upper=2).groupby("channel").sum()
    assert set(wide.index) == {"web", "app", "store"} and (wide.noise_scale == 6.0).all()
    assert ((wide.value - n_exact[wide.index]).abs() < 6.0 * np.log(1e4)).all()


def test_budget_refusal_persists_across_reopen(db_path):
    con = wml.connect(db_path)
    _orders(con)
    assert con.sql("FROM dp_set_budget('orders', epsilon := 1.5, delta := 1e-5)").fetchall()[0][1] == 1.5
    con.sql("FROM dp_aggregate('orders', group_by := ['channel'], epsilon := 1, privacy_unit := 'user_id')").fetchall()
    with pytest.raises(duckdb.Error, match=r"PrivacyBudgetExceeded.*only epsilon 0\.5"):
        con.sql("FROM dp_aggregate('orders', group_by := ['channel'], epsilon := 1, privacy_unit := 'user_id')").fetchall()
    con.close()
    con = wml.connect(db_path)
    (rel, b_eps, _, spent, _, left, _, releases), = con.sql("FROM dp_budget('orders')").fetchall()
    assert (rel, b_eps, releases) == ("main.orders", 1.5, 1) and spent == pytest.approx(1.0) and left == pytest.approx(0.5)
    with pytest.raises(duckdb.Error, match="only epsilon 0.5 and delta"):
        con.sql("FROM ab_test('orders', variant := 'channel', metric := 'revenue', control := 'web', epsilon := 0.8, "
                "bounds := [0, 500])").fetchall()
    con.sql("FROM dp_aggregate('orders', epsilon := 0.5)").fetchall()
    assert con.sql("SELECT count(*), sum(epsilon) FROM wml.dp_ledger").fetchall() == [(2, 1.5)]
    con.close()
    con = wml.connect(db_path, read_only=True)  # a release that cannot be recorded is not made
    with pytest.raises(duckdb.Error, match="PrivacyLedgerUnavailable: this release of .orders. cannot be recorded in the privacy ledger because the database is open read-only"):
        con.sql("FROM dp_aggregate('orders', epsilon := 0.01)").fetchall()
    con.close()


def test_bigquery_differential_privacy_statement(con):
    _orders(con)
    rows = wml.sql(con, """
        SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 4, delta = 1e-6, privacy_unit_column = user_id)
            channel, COUNT(*) AS orders, AVG(revenue contribution_bounds_per_group => (0, 500)) AS avg_revenue
        FROM orders GROUP BY channel ORDER BY channel""").fetchall()
    assert [r[0] for r in rows] == ["app", "store", "web"]
    assert all(100 < r[1] < 180 and 40 < r[2] < 140 for r in rows)
    assert con.sql("SELECT function, privacy_unit, epsilon FROM wml.dp_ledger").fetchall() == [("dp_aggregate", "user_id", 4.0)]
    with pytest.raises(Exception, match="contribution_bounds_per_group"):
        wml.sql(con, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1) SUM(revenue) FROM orders")
    with pytest.raises(Exception, match="OPTIONS\\(noise\\)"):
        wml.sql(con, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(noise = 1) COUNT(*) FROM orders")


def test_dp_aggregate_argument_errors(con):
    _orders(con)
    con.execute("CREATE TABLE no_orders AS SELECT * FROM orders LIMIT 0")
    (metric, value, scale), = con.sql("SELECT metric, value, noise_scale FROM dp_aggregate('no_orders')").fetchall()
    assert metric == "count" and scale == 1.0 and value < 30  # an empty table still releases its global count
    for call, message in [
        ("metrics := ['avg(revenue)']", "needs public bounds for 'revenue'"),
        ("metrics := ['mode(revenue)']", "cannot read the metric"),
        ("group_by := ['chanel']", "Did you mean 'channel'"),
        ("epsilon := -1", "argument 'epsilon'"),
        ("privacy_unit := 'user_id', group_by := ['user_id']", "every group would be one person"),
    ]:
        with pytest.raises(duckdb.Error, match=message):
            con.sql(f"FROM dp_aggregate('orders', {call})").fetchall()
    with pytest.raises(duckdb.Error, match="argument 'bounds': a private A/B test of the DOUBLE metric 'revenue'"):
        con.sql("FROM ab_test('orders', variant := 'channel', metric := 'revenue', control := 'web', epsilon := 1)").fetchall()


def test_dp_ab_intervals_cover_truth_at_nominal_rate():
    """Over 300 small simulated experiments, the private 95% intervals cover the true lift about 95% of the time
    and are wider than the exact ones (the noise is in them)."""
    rng = np.random.default_rng(1)
    covered, width_dp, width_exact = 0, [], []
    for s in range(300):
        d = ab.simulate_experiment(n=1000, lift=0.05, baseline=0.3, seed=s)
        rows, _, spent = pv.dp_ab_test(d["variant"], d["converted"], epsilon=1.0, control="A", rng=rng)
        b = rows[1]
        covered += b["ci_low"] <= 0.05 <= b["ci_high"]
        width_dp.append(b["ci_high"] - b["ci_low"])
        exact = ab.ab_test(d["variant"], d["converted"], control="A").rows[1]
        width_exact.append(exact["ci_high"] - exact["ci_low"])
    assert spent == pytest.approx(1.0)
    assert 0.91 <= covered / 300 <= 0.985
    assert np.mean(width_dp) > np.mean(width_exact)


def test_dp_segment_profiles(con):
    data, _ = simulate_users(n=1500)
    df = pd.DataFrame(data)
    con.execute("CREATE TABLE users AS SELECT * FROM df")
    exact = con.sql("FROM segment_users('users', k := 3)").df()
    prof = con.sql("FROM segment_profiles('users', epsilon := 1)").df()
    sizes = exact.segment.value_counts()
    assert len(prof) == 3
    for _, p in prof.iterrows():
        lo, hi = p.intervals["n"]
        assert lo <= p.n <= hi and abs(p.n - sizes[p.segment]) < 60
        assert set(p.intervals) >= {"n", "frequency", "avg_order_value"}
    assert "differential privacy" in prof.notes.iloc[0]
    assert con.sql("SELECT function FROM wml.dp_ledger").fetchall() == [("segment_profiles",)]


def test_pseudonymize_is_keyed_hmac_and_joins(con):
    con.execute("CREATE TABLE users AS SELECT * FROM (VALUES (1, 'ann@example.com', 'Ann Lee'), "
                "(2, 'bob@example.com', NULL)) t(user_id, email, full_name)")
    con.execute("CREATE TABLE visits AS SELECT * FROM (VALUES ('ann@example.com', 3)) t(email, n)")
    key = "k" * 20 + "-secret"
    out = con.sql(f"FROM pseudonymize('users', columns := ['email', 'full_name'], key := '{key}') ORDER BY user_id").fetchall()
    assert out[0][1] == hmac.new(key.encode(), b"ann@example.com", hashlib.sha256).hexdigest()
    assert out[1][2] is None
    joined = con.sql(f"SELECT count(*) FROM pseudonymize('users', columns := ['email'], key := '{key}') u "
                     f"JOIN pseudonymize('visits', columns := ['email'], key := '{key}') v USING (email)").fetchall()
    assert joined == [(1,)]
    with pytest.raises(duckdb.Error, match="argument 'key'"):
        con.sql("FROM pseudonymize('users', columns := ['email'], key := 'short')").fetchall()


def _people(con, n=600, seed=0):
    """Users with a churn label and personal columns: names (by column name), e-mails under a neutral name (by
    value), phones, birth dates, and a plain category."""
    from tests.conftest import churn_frame

    df = churn_frame(n, seed)
    rng = np.random.default_rng(seed)
    first = ["Ann", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jo"]
    last = ["Lee", "Smith", "Ng", "Diaz", "Khan", "Berg"]
    df["full_name"] = [f"{rng.choice(first)} {rng.choice(last)}" for _ in range(n)]
    df["contact"] = [f"user{i}@mail.example.com" for i in df.user_id]
    surnames = [a + b for a in ("Har", "Mor", "Ben", "Cal", "Dun", "Fel", "Gar", "Hol") for b in ("ton", "ley", "ris", "wood", "ford")]
    df["holder"] = [f"{a} {b}" for a, b in zip(rng.choice(first, n), rng.choice(surnames, n))]  # 400 distinct
    df["phone_no"] = [f"+1 555 {rng.integers(100, 999)} {rng.integers(1000, 9999)}" for _ in range(n)]
    df["birth_date"] = pd.to_datetime("1980-01-01") + pd.to_timedelta(rng.integers(0, 10000, n), unit="D")
    con.execute("CREATE OR REPLACE TABLE people AS SELECT * FROM df")
    return df


def test_hashed_personal_features_score_alike_on_every_path(con):
    """A linear model over a personal text column kept as salted digests: plain SQL (the store's macro) and the
    front door, which inline other linear models as SQL, score it through the UDF, which hashes the row's values
    first, so every path gives the UDF's scores; ml_export_sql says why it has no SQL for it."""
    _people(con)
    con.sql("FROM ml_train('churn', 'people', label := 'churned', algorithm := 'logistic', personal := 'hash')").fetchall()
    assert "full_name" in {f for (f,) in con.sql("SELECT unnest(features) FROM ml_models()").fetchall()}
    udf = con.sql("SELECT wml_predict('churn', p) FROM people p ORDER BY user_id").fetchall()
    assert len({round(p, 6) for (p,) in udf}) > 50
    assert con.sql("SELECT ml_predict('churn', p) FROM people p ORDER BY user_id").fetchall() == udf
    assert wml.sql(con, "SELECT predict_churn(*) FROM people ORDER BY user_id").fetchall() == udf
    with pytest.raises(duckdb.Error, match="salted digests"):
        con.sql("FROM ml_export_sql('churn')").fetchall()


def _stored_bytes(con) -> bytes:
    """Every byte of the model store, with zipped artifacts (skops, npz) also decompressed."""
    import io
    import zipfile

    out = []
    for (table,) in con.sql("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'wml'").fetchall():
        for row in con.sql(f"SELECT * FROM wml.{table}").fetchall():
            for v in row:
                b = bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else str(v).encode()
                out.append(b)
                if b[:2] == b"PK":
                    with zipfile.ZipFile(io.BytesIO(b)) as z:
                        out += [z.read(name) for name in z.namelist()]
    return b"\n".join(out)


def test_data_quality_flags_personal_columns(con):
    _people(con)
    issues = dict(con.sql("SELECT \"column\", issues FROM data_quality('people')").fetchall())
    kinds = {c: next((i for i in v if i.startswith("looks personal")), None) for c, v in issues.items()}
    assert "person's name" in kinds["full_name"] and "person's name" in kinds["holder"]
    assert "email address" in kinds["contact"] and "phone number" in kinds["phone_no"]
    assert "birth date" in kinds["birth_date"]
    assert kinds["channel"] is None and kinds["monetary"] is None and kinds["churned"] is None


@pytest.mark.parametrize("personal", ["exclude", "hash"])
def test_models_never_store_raw_personal_values(con, personal):
    df = _people(con)
    out = con.sql(f"FROM ml_train('churn', 'people', label := 'churned', algorithm := 'decision_tree', "
                  f"personal := '{personal}')").df()
    notes = " | ".join(out.notes[0])
    assert "looks personal (birth date)" in notes and "full_name: looks personal" in notes
    features = {f for (f,) in con.sql("SELECT unnest(features) FROM ml_models()").fetchall()}
    assert ("full_name" in features) == (personal == "hash") and "contact" not in features
    stored = _stored_bytes(con)
    raw = set(df.full_name) | set(df.contact) | set(df.holder) | set(df.phone_no)
    assert not [v for v in raw if v.encode() in stored]
    assert b"organic" in stored  # the search does see category values that are not personal
    p = con.sql("SELECT ml_predict('churn', p) FROM people p").fetchnumpy()
    assert np.isfinite(p[next(iter(p))]).all()
