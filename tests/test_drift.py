"""Models that stay right: drift and skew checks, the monitoring history, deploy policies, continual learning."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from warehouse_ml.tasks import drift

from .conftest import churn_frame

SEEDS = 30


def _table(con, name: str, df: pd.DataFrame) -> None:
    con.register("frame", df)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM frame")
    con.unregister("frame")


def _shift(df: pd.DataFrame) -> pd.DataFrame:
    """Recency stretched by 80% and a quarter of the users moved to the paid channel; the rest untouched."""
    out = df.copy()
    out["recency_days"] = out["recency_days"] * 1.8
    out.loc[out.index[: len(out) // 4], "channel"] = "paid"
    return out


@pytest.fixture
def trained(con):
    _table(con, "train", churn_frame(2000, seed=0))
    con.execute("FROM ml_train('churn', 'train', label := 'churned', algorithm := 'logistic')").fetchall()
    return con


@pytest.mark.slow
def test_shifted_features_are_flagged_and_fresh_samples_are_not(trained):
    """Over 30 seeds: fresh samples of the training distribution raise no alarm (the rates are printed and
    bounded), and the two features shifted on purpose are flagged every time, the untouched ones never."""
    con = trained
    frames = [churn_frame(1000, seed=s).assign(seed=s) for s in range(1, SEEDS + 1)]
    _table(con, "fresh", pd.concat(frames))
    _table(con, "shifted", pd.concat([_shift(f) for f in frames]))
    alarms = {"psi/js": [], "ks/chi_square": [], "decay": []}
    caught = []
    for s in range(1, SEEDS + 1):
        con.execute(f"CREATE OR REPLACE VIEW fresh_s AS SELECT * EXCLUDE (seed) FROM fresh WHERE seed = {s}")
        con.execute(f"CREATE OR REPLACE VIEW shifted_s AS SELECT * EXCLUDE (seed, churned) FROM shifted WHERE seed = {s}")
        for key, num, cat in (("psi/js", "psi", "jensen_shannon"), ("ks/chi_square", "ks", "chi_square")):
            rows = con.execute(f"SELECT kind, drifted FROM ml_drift('churn', 'fresh_s', numeric := '{num}', "
                               f"categorical := '{cat}', record := false)").fetchall()
            alarms[key].extend(flag for kind, flag in rows if kind == "skew")
        alarms["decay"].extend(flag for kind, flag in rows if kind == "decay")
        rows = con.execute("SELECT feature, statistic, drifted FROM ml_drift('churn', 'shifted_s', record := false) "
                           "WHERE kind = 'skew'").fetchall()
        caught.append({f: (stat, flag) for f, stat, flag in rows})
    rates = {k: f"{np.sum(v)} of {len(v)}" for k, v in alarms.items()}
    print(f"false alarms over {SEEDS} fresh samples of 1,000 rows (6 distribution checks each): {rates}")
    assert np.mean(alarms["psi/js"]) == 0.0  # PSI 0.2 / JS 0.1: sampling noise of 1,000 rows stays far below
    assert np.mean(alarms["ks/chi_square"]) <= 0.08  # tests at the 5% level: about 5% of checks by construction
    assert np.mean(alarms["decay"]) <= 0.1
    assert all(c["recency_days"] == ("psi", True) and c["channel"] == ("jensen_shannon", True) for c in caught)
    assert not any(c[f][1] for c in caught for f in ("frequency", "monetary", "support_tickets"))


def test_drift_rows_history_and_performance_decay(trained):
    con = trained
    _table(con, "today", _shift(churn_frame(1000, seed=5)))
    first = con.execute("SELECT feature, kind, statistic, threshold, drifted, n_rows, version FROM ml_drift('churn', 'today') "
                        "ORDER BY feature").fetchall()
    kinds = {(r[0], r[1]) for r in first}
    assert ("prediction", "skew") in kinds and ("roc_auc", "decay") in kinds
    assert not any(k == "drift" for _, k in kinds)  # nothing to compare with before the first check
    assert all(r[5] == 1000 and r[6] == 1 for r in first)
    # the second check also compares with the first one: the same rows have not moved since
    second = con.execute("SELECT feature, value, drifted FROM ml_drift('churn', 'today', threshold := {psi: 0.5}) "
                         "WHERE kind = 'drift'").fetchall()
    assert len(second) == 6 and all(v == pytest.approx(0.0, abs=1e-12) and not d for _, v, d in second)
    history = con.execute("SELECT check_id, action, count(*) FROM ml_monitoring('churn') GROUP BY ALL ORDER BY 1").fetchall()
    assert history == [(1, "check", 7), (2, "check", 13)]
    # performance decay: labels drawn against the model's own scores turn it useless on this relation
    _table(con, "relabelled", churn_frame(1000, seed=6).assign(churned=lambda d: (d.frequency % 2 == 0).astype(int)))
    value, threshold, drifted, note = con.execute(
        "SELECT value, threshold, drifted, note FROM ml_drift('churn', 'relabelled') WHERE kind = 'decay'").fetchone()
    assert drifted and value > threshold == drift.DEFAULT_THRESHOLDS["decay"] and "roc_auc" in note


def test_monitoring_survives_reopen_and_old_stores_gain_the_table(db_path):
    con = wml.connect(db_path)
    _table(con, "train", churn_frame(600, seed=0))
    con.execute("FROM ml_train('churn', 'train', label := 'churned', algorithm := 'logistic')").fetchall()
    con.execute("FROM ml_drift('churn', 'train')").fetchall()
    # a store written by the previous version had no monitoring table: drop it and reopen
    con.execute("DROP TABLE wml.monitoring")
    con.close()
    con = wml.connect(db_path)
    assert con.execute("FROM ml_monitoring('churn')").fetchall() == []
    con.execute("FROM ml_drift('churn', 'train')").fetchall()
    con.close()
    con = wml.connect(db_path)
    rows = con.execute("SELECT check_id, feature, kind, drifted FROM ml_monitoring('churn') WHERE kind = 'skew'").fetchall()
    assert len(rows) == 6 and all(not r[3] for r in rows)
    with pytest.raises(duckdb.Error, match="ModelNotFound: no model named 'chrun'. Did you mean 'churn'"):
        con.execute("FROM ml_monitoring('chrun')").fetchall()
    con.execute("UPDATE wml.model_versions SET meta = '{}'")  # as a version stored before snapshots were kept
    con.close()
    con = wml.connect(db_path)
    with pytest.raises(duckdb.Error, match="trained before training snapshots were kept.*Retrain it"):
        con.execute("FROM ml_drift('churn', 'train')").fetchall()
    con.close()


def test_drift_arguments_are_validated(trained):
    con = trained
    cases = [("threshold := -1", "argument 'threshold': must be a positive number"),
             ("threshold := {psy: 0.1}", "unknown statistic 'psy'"),
             ("numeric := 'wasserstein'", "argument 'numeric': unknown statistic"),
             ("record := 'yes'", "argument 'record'")]
    for arg, message in cases:
        with pytest.raises(duckdb.Error, match=message):
            con.execute(f"FROM ml_drift('churn', 'train', {arg})").fetchall()
    con.execute("CREATE TABLE partial AS SELECT recency_days FROM train")
    with pytest.raises(duckdb.Error, match="UnknownColumn: relation 'partial' has no column 'frequency'"):
        con.execute("FROM ml_drift('churn', 'partial')").fetchall()
    with pytest.raises(duckdb.Error, match="UnknownRelation"):
        con.execute("FROM ml_drift('churn', 'train; DROP TABLE train')").fetchall()


def test_statistics_match_their_definitions():
    expected, actual = [50, 30, 20, 0], [30, 30, 40, 0]
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.3, 0.3, 0.4])
    assert drift.psi(expected, actual) == pytest.approx(np.sum((q - p) * np.log(q / p)))
    m = (p + q) / 2
    js = np.sqrt((np.sum(p * np.log2(p / m)) + np.sum(q * np.log2(q / m))) / 2)
    assert drift.js_distance(expected, actual) == pytest.approx(js)
    from scipy.stats import chi2_contingency

    assert drift.chi_square_p_value(expected, actual) == pytest.approx(
        chi2_contingency(np.array([[50, 30, 20], [30, 30, 40]]), correction=False)[1])


# -- deploy policies ------------------------------------------------------------------------------------------------
def test_if_better_keeps_the_better_model(con, churn_table):
    first = con.execute("SELECT version, notes FROM train_churn('uf', algorithm := 'logistic')").fetchone()
    assert first[0] == 1 and "deployed: the model had no active version" in first[1]
    # a depth-1 tree is worse: stored as version 2, not deployed, and the note gives both scores
    version, metrics, notes = con.execute("SELECT version, metrics, notes FROM train_churn('uf', algorithm := "
                                          "'decision_tree', params := {max_depth: 1})").fetchone()
    decision = notes[-1]
    assert version == 2 and decision.startswith("not deployed (kept the active version)")
    assert f"roc_auc is {metrics['roc_auc']:.4f}" in decision and "active version 1" in decision
    assert con.execute("SELECT version FROM ml_models() WHERE is_active").fetchall() == [(1,)]
    # the same settings again score the same on the same hold-out: at least as good, so deployed
    notes = con.execute("SELECT notes FROM train_churn('uf', algorithm := 'logistic')").fetchone()[0]
    assert notes[-1].startswith("deployed: on the same hold-out")
    assert con.execute("SELECT version FROM ml_models() WHERE is_active").fetchall() == [(3,)]
    con.execute("FROM ml_train('churn', 'uf', label := 'churned', algorithm := 'decision_tree', params := "
                "{max_depth: 1}, deploy := 'always')").fetchall()
    assert con.execute("SELECT version FROM ml_models() WHERE is_active").fetchall() == [(4,)]
    notes = con.execute("SELECT notes FROM train_churn('uf', deploy := 'never', algorithm := 'logistic')").fetchone()[0]
    assert "deploy := 'never'" in notes[-1]
    assert con.execute("SELECT version FROM ml_models() WHERE is_active").fetchall() == [(4,)]
    with pytest.raises(duckdb.Error, match="argument 'deploy': unknown policy 'sometimes'"):
        con.execute("FROM train_churn('uf', deploy := 'sometimes')").fetchall()


# -- continual learning ---------------------------------------------------------------------------------------------
def _new_behaviour(n: int, seed: int) -> pd.DataFrame:
    """The market changed: churn now follows support tickets and frequency up, recency down; dated rows."""
    df = churn_frame(n, seed)
    rng = np.random.default_rng(seed + 100)
    logit = -0.03 * df.recency_days + 1.5 * df.support_tickets + 0.3 * df.frequency - 1
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    df["signup_day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return df


def _auc(con, model: str, relation: str) -> float:
    return con.execute(f"SELECT value FROM ml_evaluate('{model}', '{relation}') WHERE metric = 'roc_auc'").fetchone()[0]


def test_ml_update_improves_a_model_on_shifted_data(con):
    _table(con, "train", churn_frame(1500, seed=0))
    _table(con, "new_rows", _new_behaviour(1500, seed=1))
    _table(con, "later", _new_behaviour(2000, seed=2))  # judged on rows neither version saw
    for algorithm in ("random_forest", "logistic"):
        model = f"m_{algorithm}"
        con.execute(f"FROM ml_train('{model}', 'train', label := 'churned', algorithm := '{algorithm}')").fetchall()
        stale = _auc(con, model, "later")
        version, notes = con.execute(f"SELECT version, notes FROM ml_update('{model}', 'new_rows')").fetchone()
        updated = _auc(con, model, "later")
        print(f"{algorithm}: ROC AUC on later rows {stale:.3f} without the update, {updated:.3f} with it")
        assert version == 2 and updated > stale + 0.1 and notes[-1].startswith("deployed: on the same hold-out")
        how = "added 50 trees grown on" if algorithm == "random_forest" else "logistic has no incremental update"
        assert any(how in n for n in notes)
        assert con.execute(f"SELECT action, statistic, version FROM ml_monitoring('{model}') WHERE kind = 'update'"
                           ).fetchall() == [("update", "added_trees" if algorithm == "random_forest" else "retrain", 2)]


def test_rolling_window_and_retrain_only_on_drift(con):
    _table(con, "train", churn_frame(1500, seed=0))
    _table(con, "new_rows", _new_behaviour(1500, seed=1))
    con.execute("FROM ml_train('churn', 'train', label := 'churned', algorithm := 'logistic')").fetchall()
    in_window = con.execute("SELECT count(*) FROM new_rows WHERE signup_day > "
                            "(SELECT max(signup_day) FROM new_rows) - INTERVAL 90 DAY").fetchone()[0]
    n_train, n_test, notes = con.execute("""SELECT n_train, n_test, notes FROM ml_update('churn', 'new_rows',
        "window" := INTERVAL 90 DAY, time := 'signup_day', deploy := 'never')""").fetchone()
    assert n_train + n_test == in_window < 1500 and "rows within 90 days of the latest signup_day" in notes[0]
    # the training distribution itself: no drift, no retrain; the new behaviour: its decay triggers one
    assert con.execute("""SELECT retrained, reason, version FROM ml_retrain('churn', 'train', "when" := 'drift')"""
                       ).fetchall() == [(False, "no drift or decay past the threshold", None)]
    retrained, reason, version, active = con.execute(
        "SELECT retrained, reason, version, active_version FROM ml_retrain('churn', 'new_rows')").fetchone()
    assert retrained and "decayed" in reason and version == active == 3
    actions = con.execute("SELECT DISTINCT check_id, action, statistic FROM ml_monitoring('churn') "
                          "WHERE action <> 'check' ORDER BY 1").fetchall()
    assert [a[1:] for a in actions] == [("update", "retrain"), ("retrain", "skipped"), ("retrain", "retrain")]
    with pytest.raises(duckdb.Error, match="argument 'window': 'banana' is not an interval"):
        con.execute("""FROM ml_update('churn', 'new_rows', "window" := 'banana', time := 'signup_day')""").fetchall()
    with pytest.raises(duckdb.Error, match="argument 'time': is needed with window"):
        con.execute("""FROM ml_update('churn', 'new_rows', "window" := INTERVAL 9 DAY)""").fetchall()
    with pytest.raises(duckdb.Error, match="argument 'when': unknown condition 'sometimes'"):
        con.execute("""FROM ml_retrain('churn', 'new_rows', "when" := 'sometimes')""").fetchall()


# -- forecast accuracy tracking -------------------------------------------------------------------------------------
def _sales(days: pd.DatetimeIndex, level: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(sku, d.date(), float(rng.poisson(base * level * (1.3 if d.day_of_week >= 5 else 1.0))))
            for sku, base in (("A", 20), ("B", 5)) for d in days]
    return pd.DataFrame(rows, columns=["sku", "day", "units"])


def test_saved_forecasts_are_scored_against_the_actuals_that_arrive(db_path):
    con = wml.connect(db_path)
    history = pd.date_range("2024-01-01", periods=91, freq="D")
    future = pd.date_range("2024-04-01", periods=21, freq="D")
    for name, level in (("steady", 1.0), ("jumped", 2.0)):
        _table(con, name, _sales(history, 1.0, seed=1))
        saved = con.execute(f"SELECT count(*), min(date), max(date) FROM save_forecast('{name}', 14, item := 'sku', "
                            "date := 'day', value := 'units')").fetchone()
        assert saved[0] == 28 and str(saved[1]) == "2024-04-01" and str(saved[2]) == "2024-04-14"
        n_actuals = con.execute(f"SELECT n_actuals FROM forecast_accuracy('{name}') WHERE scope = 'overall'").fetchall()
        assert n_actuals == [(0,)]  # nothing has arrived yet
        con.register("frame", _sales(future, level, seed=2))  # three weeks of actuals; demand doubled in 'jumped'
        con.execute(f"INSERT INTO {name} SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    con = wml.connect(db_path)  # the saved forecasts are in the database file
    acc = {name: con.execute(f"SELECT n_forecast, n_actuals, mase, bias, coverage FROM forecast_accuracy('{name}') "
                             "WHERE scope = 'overall'").fetchone() for name in ("steady", "jumped")}
    print("forecast accuracy (n_forecast, n_actuals, MASE, bias, coverage):", acc)
    assert acc["steady"][:2] == (28, 28) and acc["steady"][2] < 1.0 and acc["steady"][4] >= 0.8
    assert acc["jumped"][2] > 2 * acc["steady"][2] and acc["jumped"][3] < -5 and acc["jumped"][4] < 0.5
    items = con.execute("SELECT item, n_actuals FROM forecast_accuracy('steady') WHERE scope = 'item' ORDER BY item").fetchall()
    assert items == [("A", 14), ("B", 14)]
    with pytest.raises(duckdb.Error, match="no forecasts are saved under 'stedy'. Did you mean 'steady'"):
        con.execute("FROM forecast_accuracy('stedy')").fetchall()
    con.close()


def test_bigquery_ml_create_or_replace_model_follows_the_policy(con, churn_table):
    wml.sql(con, "CREATE MODEL churn_bq OPTIONS(model_type='logistic_reg', input_label_cols=['churned']) AS SELECT * FROM uf")
    row = wml.sql(con, "CREATE OR REPLACE MODEL churn_bq OPTIONS(model_type='boosted_tree_classifier', "
                       "max_iterations=1, input_label_cols=['churned']) AS SELECT * FROM uf").fetchall()[0]
    version, notes = row[1], row[-1]  # model, version, task, algorithm, n_train, n_test, metrics, seconds, notes
    assert version == 2 and notes[-1].startswith("not deployed (kept the active version)")
    assert con.execute("SELECT version, algorithm FROM ml_models() WHERE model = 'churn_bq' AND is_active").fetchall() == [
        (1, "logistic")]


@pytest.mark.slow
def test_ml_update_warm_starts_the_mlp(con):
    pytest.importorskip("tensorflow")
    _table(con, "train", churn_frame(1500, seed=0))
    _table(con, "new_rows", _new_behaviour(1500, seed=1))
    _table(con, "later", _new_behaviour(2000, seed=2))
    con.execute("FROM ml_train('m', 'train', label := 'churned', algorithm := 'mlp', params := {epochs: 10})").fetchall()
    stale = _auc(con, "m", "later")
    version, notes = con.execute("SELECT version, notes FROM ml_update('m', 'new_rows', epochs := 10)").fetchone()
    updated = _auc(con, "m", "later")
    print(f"mlp: ROC AUC on later rows {stale:.3f} without the update, {updated:.3f} with it")
    assert version == 2 and updated > stale + 0.1
    assert any("warm start: 10 more epoch(s) on 1,200 new rows" in n for n in notes)
    assert con.execute("SELECT statistic FROM ml_monitoring('m') WHERE kind = 'update'").fetchall() == [("warm_start",)]


def test_a_read_only_database_checks_without_recording(db_path):
    con = wml.connect(db_path)
    _table(con, "train", churn_frame(600, seed=0))
    con.execute("FROM ml_train('churn', 'train', label := 'churned', algorithm := 'logistic')").fetchall()
    con.close()
    ro = wml.connect(db_path, read_only=True)
    assert len(ro.execute("FROM ml_drift('churn', 'train', record := false)").fetchall()) == 7
    with pytest.raises(duckdb.Error, match="argument 'record': the database is open read-only"):
        ro.execute("FROM ml_drift('churn', 'train')").fetchall()
    ro.close()


@pytest.mark.slow
def test_real_data_random_halves_raise_no_alarm_and_a_selected_subset_does():
    """Breast cancer (569 real tumours, shipped inside scikit-learn): over 10 random halves no statistic of 30
    features and the prediction passes its threshold; the largest tumours alone are flagged on their size."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    con = wml.connect(":memory:")
    alarms = []
    for seed in range(10):
        order = np.random.default_rng(seed).permutation(len(frame))
        _table(con, "tr", frame.iloc[order[: len(frame) // 2]])
        _table(con, "te", frame.iloc[order[len(frame) // 2:]])
        con.execute("FROM ml_train('bc', 'tr', label := 'target', algorithm := 'logistic', deploy := 'always')").fetchall()
        alarms += [r[0] for r in con.execute("SELECT drifted FROM ml_drift('bc', 'te', record := false) "
                                             "WHERE kind = 'skew'").fetchall()]
    print(f"real data: {sum(alarms)} false alarms in {len(alarms)} checks of random halves")
    assert len(alarms) == 310 and sum(alarms) == 0
    _table(con, "largest", frame[frame.mean_radius >= frame.mean_radius.quantile(0.6)])
    flagged = {r[0] for r in con.execute("SELECT feature FROM ml_drift('bc', 'largest', record := false) "
                                         "WHERE kind = 'skew' AND drifted").fetchall()}
    assert {"mean_radius", "mean_area", "mean_perimeter", "prediction"} <= flagged
    con.close()
