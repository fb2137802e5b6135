"""Supervised models from SQL on real DuckDB files: training, prediction, evaluation, explanation, registry."""
from __future__ import annotations

import json
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml

from .conftest import churn_frame


def scores(con, model="churn", table="uf"):
    return np.array([r[0] for r in con.execute(f"SELECT ml_predict('{model}', t) FROM {table} t ORDER BY user_id").fetchall()])


def test_train_churn_stores_version_one_with_holdout_metrics(con, churn_table):
    row = con.execute("FROM train_churn('uf', algorithm := 'logistic')").fetchone()
    cols = [d[0] for d in con.description]
    r = dict(zip(cols, row))
    assert r["model"] == "churn" and r["version"] == 1 and r["task"] == "classification"
    assert r["algorithm"] == "logistic" and r["n_train"] == 1200 and r["n_test"] == 300
    assert set(r["metrics"]) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"}
    assert r["metrics"]["roc_auc"] > 0.75
    assert any("user_id" in n and "ID-like" in n for n in r["notes"])


def test_predictions_are_probabilities_that_rank_churners_first(con, churn_table):
    con.execute("FROM train_churn('uf', algorithm := 'gbm')").fetchall()
    p = scores(con)
    y = churn_frame()["churned"].to_numpy()
    assert p.shape == (1500,) and np.all((p >= 0) & (p <= 1))
    assert p[y == 1].mean() > p[y == 0].mean() + 0.2
    same = con.execute("SELECT predict_churn(u) FROM uf u ORDER BY user_id").fetchall()
    assert np.allclose([s[0] for s in same], p)
    labels = {r[0] for r in con.execute("SELECT DISTINCT ml_predict_label('churn', u) FROM uf u").fetchall()}
    assert labels == {0, 1}  # the label's own type comes back
    label_type = con.execute("SELECT typeof(churned) FROM uf LIMIT 1").fetchall()[0][0]
    assert str(con.sql("SELECT ml_predict_label('churn', u) FROM uf u").types[0]) == label_type


@pytest.mark.parametrize("algorithm", ["logistic", "decision_tree", "random_forest", "gbm", "svm"])
def test_every_algorithm_trains_and_scores(con, churn_table, algorithm):
    r = con.execute(f"FROM ml_train('m_{algorithm}', 'uf', label := 'churned', algorithm := '{algorithm}')").fetchone()
    assert r[3] == algorithm
    p = scores(con, f"m_{algorithm}")
    assert np.all((p >= 0) & (p <= 1)) and p.std() > 0.05


def test_auto_reports_every_candidate_and_picks_the_best(con, churn_table):
    row = con.execute("SELECT algorithm, candidates FROM ml_train('churn', 'uf', label := 'churned')").fetchone()
    cands = row[1]
    assert [c["algorithm"] for c in cands] and {c["algorithm"] for c in cands} == {"logistic", "gbm", "blend"}
    # the best by cross-validation, or the linear model when it is within the noise of the best (one-SE rule)
    assert row[0] in (max(cands, key=lambda c: c["cv_score"])["algorithm"], "logistic")
    assert all(c["metric"] == "roc_auc" for c in cands)


def test_regression_and_multiclass(con):
    rng = np.random.default_rng(1)
    n = 800
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    seg = rng.choice(["a", "b", "c"], n)
    spend = 3 * x1 - 2 * x2 + np.where(seg == "b", 4, 0) + rng.normal(0, 0.5, n)
    cls = np.where(x1 > 0.5, "high", np.where(x1 < -0.5, "low", "mid"))
    import pandas as pd
    df = pd.DataFrame({"x1": x1, "x2": x2, "seg": seg, "spend": spend, "tier": cls})
    con.execute("CREATE TABLE r AS SELECT * FROM df")
    row = con.execute("SELECT task, algorithm, metrics FROM ml_train('spend', 'r', label := 'spend', exclude := ['tier'], algorithm := 'linear')").fetchone()
    assert row[0] == "regression" and row[2]["r2"] > 0.9 and set(row[2]) >= {"mae", "rmse", "r2", "mape"}
    row = con.execute("SELECT task, metrics FROM ml_train('tier', 'r', label := 'tier', exclude := ['spend'], algorithm := 'gbm')").fetchone()
    assert row[0] == "classification" and row[1]["accuracy"] > 0.85
    labels = {r[0] for r in con.execute("SELECT ml_predict_label('tier', t) FROM r t").fetchall()}
    assert labels == {"high", "low", "mid"}


def test_persistence_across_reconnects(db_path):
    con = wml.connect(db_path)
    df = churn_frame()
    con.execute("CREATE TABLE uf AS SELECT * FROM df")
    con.execute("FROM train_churn('uf', algorithm := 'random_forest')").fetchall()
    before = scores(con)
    con.close()
    con2 = wml.connect(db_path)
    assert np.allclose(scores(con2), before)
    assert con2.execute("SELECT model, version, is_active FROM ml_models()").fetchall() == [("churn", 1, True)]
    con2.close()


def test_versions_deploy_rollback_drop(con, churn_table):
    con.execute("FROM train_churn('uf', algorithm := 'logistic')").fetchall()
    p1 = scores(con)
    # deploy := 'always': this test is about the registry's mechanics; the default policy is tested in test_drift
    con.execute("FROM train_churn('uf', algorithm := 'decision_tree', deploy := 'always')").fetchall()
    assert con.execute("SELECT version, is_active FROM ml_models() ORDER BY version").fetchall() == [(1, False), (2, True)]
    assert not np.allclose(scores(con), p1)
    assert con.execute("SELECT version FROM ml_rollback('churn')").fetchall() == [(1,)]
    assert np.allclose(scores(con), p1)  # the cache saw the change of active version
    assert con.execute("SELECT version, algorithm FROM ml_deploy('churn', 2)").fetchall() == [(2, "decision_tree")]
    with pytest.raises(duckdb.Error, match="has no version 7"):
        con.execute("FROM ml_deploy('churn', 7)").fetchall()
    assert len(con.execute("FROM ml_drop('churn')").fetchall()) == 2
    assert con.execute("FROM ml_models()").fetchall() == []
    with pytest.raises(duckdb.Error, match="ModelNotFound: no model named 'churn'"):
        con.execute("SELECT predict_churn(u) FROM uf u").fetchall()


def test_failed_training_leaves_the_active_version_intact(con, churn_table):
    con.execute("FROM train_churn('uf', algorithm := 'logistic')").fetchall()
    p1 = scores(con)
    con.execute("CREATE TABLE one_class AS SELECT * REPLACE (0 AS churned) FROM uf")
    with pytest.raises(duckdb.Error, match="single class"):
        con.execute("FROM train_churn('one_class')").fetchall()
    with pytest.raises(duckdb.Error, match="argument 'algorithm'"):
        con.execute("FROM train_churn('uf', algorithm := 'xgboost')").fetchall()
    assert con.execute("SELECT version, is_active FROM ml_models()").fetchall() == [(1, True)]
    assert np.allclose(scores(con), p1)


def test_evaluate_and_explain(con, churn_table):
    con.execute("FROM train_churn('uf', algorithm := 'logistic')").fetchall()
    ev = dict(con.execute("FROM ml_evaluate('churn', 'uf')").fetchall())
    assert ev["n_rows"] == 1500 and 0.75 < ev["roc_auc"] <= 1
    expl = {r[0]: (r[1], r[2]) for r in con.execute("FROM ml_explain('churn')").fetchall()}
    assert set(expl) == {"recency_days", "frequency", "monetary", "support_tickets", "channel"}
    assert expl["recency_days"][1] == "increases" and expl["frequency"][1] == "decreases"
    assert expl["recency_days"][0] > expl["monetary"][0]
    rows = con.execute("SELECT ml_explain_row('churn', u, k := 2) FROM uf u LIMIT 4").fetchall()
    assert all(len(r[0]) == 2 and {"feature", "contribution"} == set(r[0][0]) for r in rows)
    assert all(abs(r[0][0]["contribution"]) >= abs(r[0][1]["contribution"]) for r in rows)


def _tiers(con):
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=800), rng.normal(size=800)
    tier = np.where(x1 > 0.5, "high", np.where(x1 < -0.5, "low", "mid"))
    df = pd.DataFrame({"x1": x1, "x2": x2, "seg": rng.choice(["a", "b", "c"], 800), "tier": tier,
                       "spend": 3 * x1 - 2 * x2 + rng.normal(0, 0.5, 800)})
    con.execute("CREATE TABLE r AS SELECT * FROM df")
    return "r"


@pytest.mark.parametrize("model,label,algorithm", [("churn", "churned", "gbm"), ("tier", "tier", "random_forest"),
                                                   ("spend", "spend", "linear")])
def test_importances_are_computed_on_first_explain_and_kept(db_path, model, label, algorithm):
    """Training keeps hold-out rows, not importances; the first ml_explain computes them (the values an eager
    computation on the same hold-out gives), stores them in the version's meta without touching the model, and
    every later call and session reads them back."""
    from warehouse_ml.functions.supervised import labelled_rows
    from warehouse_ml.tasks import supervised as sv
    from warehouse_ml.tasks.features import Featurizer, split_groups

    con = wml.connect(db_path)
    table = "uf" if model == "churn" else _tiers(con)
    if model == "churn":
        df = churn_frame()
        con.execute("CREATE TABLE uf AS SELECT * FROM df")
    other = "tier" if model == "spend" else "spend"
    exclude = "[]" if model == "churn" else f"['{other}']"
    con.execute(f"FROM ml_train('{model}', '{table}', label := '{label}', algorithm := '{algorithm}', "
                f"exclude := {exclude})").fetchall()
    stored = "SELECT meta->'importance', (meta->>'importance_sample') IS NOT NULL, artifact FROM wml.model_versions"
    importance, has_sample, artifact = con.execute(stored).fetchall()[0]
    assert importance is None and has_sample
    before = scores(con, model, table) if model == "churn" else None

    sm = wml.binding.registry.runtime_for(con).store.load(model)
    rows, y, _, _ = labelled_rows(con.sql(f"FROM {table}").to_arrow_table(), label, table)
    featurizer = Featurizer.from_json(sm.features)
    X = featurizer.transform(rows)
    _, holdout, _, _ = sv.split_holdout(np.arange(len(y)), y, sm.task, 0.2, split_groups(rows)[0])
    eager = sv.global_importance(sm.obj, sv.importance_sample(sm.obj, X[holdout], y[holdout], sm.task), sm.task,
                                 featurizer.categorical_mask, featurizer.names,
                                 predict=sv.predict_fn(sm.obj, sm.task, sm.features))

    first = con.execute(f"FROM ml_explain('{model}')").fetchall()
    assert first == [(r["feature"], r["importance"], r["direction"]) for r in eager]
    assert {f for f, _, _ in first} == set(featurizer.names) and any(v > 0 for _, v, _ in first)
    importance, has_sample, after = con.execute(stored).fetchall()[0]
    assert [(r["feature"], r["importance"], r["direction"]) for r in json.loads(importance)] == first
    assert not has_sample and after == artifact  # the sample gave way to the importances; the model is as stored
    assert wml.binding.registry.runtime_for(con).store.load(model) is sm  # still the cached, fitted object
    assert con.execute("SELECT version, is_active FROM ml_models()").fetchall() == [(1, True)]
    if before is not None:
        assert np.array_equal(scores(con, model, table), before)
    con.close()
    con = wml.connect(db_path)
    assert con.execute(f"FROM ml_explain('{model}')").fetchall() == first
    con.close()
    con = wml.connect(db_path, read_only=True)
    assert con.execute(f"FROM ml_explain('{model}')").fetchall() == first
    con.close()


def test_importances_of_a_read_only_database_are_computed_and_not_stored(db_path):
    con = wml.connect(db_path)
    df = churn_frame()
    con.execute("CREATE TABLE uf AS SELECT * FROM df")
    con.execute("FROM train_churn('uf', algorithm := 'gbm')").fetchall()
    con.close()
    con = wml.connect(db_path, read_only=True)
    first = con.execute("FROM ml_explain('churn')").fetchall()
    assert len(first) == 5 and con.execute("FROM ml_explain('churn')").fetchall() == first
    con.close()
    con = wml.connect(db_path)
    assert con.execute("SELECT (meta->'importance') IS NULL FROM wml.model_versions").fetchall() == [(True,)]
    assert con.execute("FROM ml_explain('churn')").fetchall() == first
    con.close()


def test_holdout_split_is_scikit_learns(con):
    """The hold-out split draws the rows train_test_split(stratify=...) draws, with the same generator."""
    from sklearn.model_selection import train_test_split

    from warehouse_ml.tasks.estimators import SEED
    from warehouse_ml.tasks.supervised import shuffle_split

    rng = np.random.default_rng(3)
    for y in [rng.integers(0, 2, 5000), rng.integers(0, 5, 1001), np.array(["a", "b", "c"] * 7 + ["d", "d"]),
              rng.random(300) < 0.07, rng.integers(0, 20, 2000), None]:  # 20 classes: the sorted path
        n = 777 if y is None else len(y)
        for n_test in (1 if y is None else len(np.unique(y)), n // 5, n // 2):
            want = train_test_split(np.arange(n), test_size=n_test, random_state=SEED, stratify=y)
            got = shuffle_split(y, n, n_test)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_median_imputer_is_scikit_learns():
    """The linear pipelines' imputer learns SimpleImputer's medians and missing indicators, to the last bit:
    odd and even counts of present values, ties, an all-missing column, keep_empty_features."""
    from sklearn.impute import SimpleImputer

    from warehouse_ml.tasks.estimators import MedianImputer

    rng = np.random.default_rng(11)
    for n in (2, 7, 8, 1000, 1001, 20_000):
        X = rng.normal(size=(n, 5))
        X[:, 1] = np.round(X[:, 1])  # ties
        X[rng.random((n, 5)) < 0.1] = np.nan
        X[:, 4] = np.nan
        X[0, 3] = np.nan
        for keep in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "Skipping features without any observed values"
                want = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=keep).fit(X)
                got = MedianImputer(strategy="median", add_indicator=True, keep_empty_features=keep).fit(X)
                assert np.array_equal(got.statistics_, want.statistics_, equal_nan=True)
                assert np.array_equal(got.transform(X), want.transform(X), equal_nan=True)


def test_integer_columns_are_counted_and_kept_as_by_hashing():
    """Featurizer.fit skips hashing where the answer is known: a strictly increasing key is all distinct, and an
    integer not named like a key is only checked for being constant. Every shape gives the count pandas' hash
    table gives, and the same features and exclusions."""
    import pyarrow as pa

    from warehouse_ml.tasks.features import Featurizer, distinct_count

    rng = np.random.default_rng(5)
    shapes = {"increasing": np.arange(1000) * 3, "decreasing": np.arange(1000)[::-1], "one repeat": np.r_[0:500, 499:999],
              "random": rng.integers(0, 300, 1000), "int64 extremes": np.array([-2**63, 2**63 - 1] * 500)}
    for label, values in shapes.items():
        for nulls in (False, True):
            arr = pa.array(values, mask=(np.arange(1000) % 7 == 0) if nulls else None)
            col = pa.chunked_array([arr[:400], arr[400:]])  # a chunk boundary inside the increasing run
            assert distinct_count(col) == len(pd.unique(arr.drop_null().to_numpy())), (label, nulls)
    table = pa.table({"order_no": np.arange(500), "n_orders": np.arange(500), "visits": np.full(500, 3),
                      "sparse": pa.array([None] * 499 + [9], pa.int64()), "churned": np.arange(500) % 2})
    f = Featurizer.fit(table, "churned")
    assert [x["name"] for x in f.features] == ["n_orders"]
    assert {e["name"]: e["reason"].split(":")[0] for e in f.excluded} == {
        "order_no": "ID-like", "visits": "constant", "sparse": "constant"}


def test_binary_metrics_are_scikit_learns():
    """Accuracy, precision, recall and F1 come from the counts, ROC AUC, average precision, Brier score and log loss
    from one sort of the scores, all with scikit-learn's values to the last bit: on ties, scores rounded to a
    few values, scores of exactly 0 and 1, one class absent."""
    from sklearn import metrics as skm

    from warehouse_ml.tasks import supervised as sv

    class Fitted:
        classes_ = np.array(["no", "yes"])

    rng = np.random.default_rng(5)
    for trial in range(200):
        n = int(rng.integers(2, 2000))
        y = np.where(rng.random(n) < rng.random(), "yes", "no")
        p = rng.random(n) * (0 if trial % 9 == 0 else 1)  # some trials predict no positive at all
        if trial % 3 == 1:
            p = np.round(p, 1)  # many ties
        if trial % 5 == 2:
            p[: n // 3] = 0.0
            p[n // 3: n // 2] = 1.0
        if trial % 13 == 3:
            y[:] = "no"
        got = sv.evaluate(Fitted(), None, y, "classification", scores=p)
        pred = np.where(p > 1 - p, "yes", "no")
        positive = y == "yes"
        want = {"accuracy": skm.accuracy_score(y, pred),
                "precision": skm.precision_score(y, pred, pos_label="yes", zero_division=0),
                "recall": skm.recall_score(y, pred, pos_label="yes", zero_division=0),
                "f1": skm.f1_score(y, pred, pos_label="yes", zero_division=0),
                "brier": skm.brier_score_loss(positive, p),
                "log_loss": skm.log_loss(y, np.clip(np.column_stack([1 - p, p]), 1e-15, 1), labels=["no", "yes"])}
        if 0 < positive.sum() < n:
            want.update(roc_auc=skm.roc_auc_score(positive, p), pr_auc=skm.average_precision_score(positive, p))
        assert set(got) == set(want) | {"ece"}
        assert {k: got[k] for k in want} == {k: float(v) for k, v in want.items()}


def test_baseline_row_is_numpys_median_and_most_frequent_code():
    """The explanation baseline: each number column's np.median of its present values, to the bit (odd and even
    counts, ties, huge and tiny magnitudes), each category's first most frequent code, NaN for an empty column."""
    from warehouse_ml.tasks import supervised as sv

    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(1, 400))
        X = rng.standard_normal((n, 4)) * 10.0 ** rng.integers(-300, 300, size=4)
        X[:, 1] = rng.integers(-3, 4, n) * 10.0 ** rng.integers(-300, 300)  # many ties
        X[:, 2] = rng.integers(0, 5, n)
        X[rng.random((n, 4)) < rng.random() * 0.5] = np.nan
        if trial % 7 == 0:
            X[:, 3] = np.nan
        got = sv.baseline_row(np.asarray(X, order="C"), np.array([False, False, True, False]))
        for j in (0, 1, 3):
            present = X[~np.isnan(X[:, j]), j]
            assert (np.isnan(got[j]) if not len(present) else got[j] == np.median(present)), (trial, j)
        codes = X[~np.isnan(X[:, 2]), 2].astype(int)
        assert np.isnan(got[2]) if not len(codes) else got[2] == np.bincount(codes).argmax()


def test_row_groups_of_a_key_column_with_and_without_hashing():
    """A key column's codes are pd.factorize's (first appearance order), whether it strictly increases (read
    without hashing) or not, NULLs -1; a unique increasing key leaves every row its own group."""
    import pandas as pd
    import pyarrow as pa

    from warehouse_ml.tasks.features import _codes, split_groups

    for values in ([3, 5, 9, 10], [3, 5, 5, 10], [10, 3, 5, 9], [7], [], [1, None, 4]):
        want = pd.factorize(pd.array(values, dtype="Int64"), use_na_sentinel=True)[0]
        assert _codes(pa.chunked_array([pa.array(values, pa.int64())])).tolist() == list(want), values
    table = pa.table({"user_id": np.arange(5, 15), "x": np.ones(10)})
    assert split_groups(table) == (None, [])  # ten identical x: still distinct rows, by their key
    shared = pa.table({"user_id": [1, 2, 2, 3, 4, 5], "x": np.arange(6.0)})
    groups, notes = split_groups(shared)
    assert groups.tolist() == [0, 1, 1, 2, 3, 4] and "user_id" in notes[0]


def test_front_door_star_spelling(con, churn_table):
    con.execute("FROM train_churn('uf', algorithm := 'logistic')").fetchall()
    via_star = wml.sql(con, "SELECT user_id, predict_churn(*) AS p FROM uf ORDER BY user_id").fetchall()
    assert np.allclose([r[1] for r in via_star], scores(con))
    via_alias = wml.sql(con, "SELECT ml_predict('churn', *) FROM uf u ORDER BY user_id").fetchall()
    assert np.allclose([r[0] for r in via_alias], scores(con))
    with pytest.raises(wml.WmlError, match="ambiguous"):
        wml.sql(con, "SELECT predict_churn(*) FROM uf a JOIN uf b USING (user_id)")


def test_null_features_and_unseen_categories_still_score(con, churn_table):
    con.execute("FROM train_churn('uf', algorithm := 'gbm')").fetchall()
    con.execute("""CREATE TABLE new_users AS SELECT * REPLACE (NULL::DOUBLE AS recency_days, 'tiktok' AS channel)
                   FROM uf LIMIT 5""")
    p = [r[0] for r in con.execute("SELECT predict_churn(n) FROM new_users n").fetchall()]
    assert len(p) == 5 and all(v is not None and 0 <= v <= 1 for v in p)


@pytest.mark.parametrize("sql,match", [
    ("FROM train_churn('uf', label := 'churnd')", "has no column 'churnd'.*Did you mean 'churned'"),
    ("FROM ml_train('m', 'uf')", "argument 'label': is required"),
    ("FROM ml_train('m', 'uf', label := 'user_id')", "argument 'label'.*looks like an identifier"),
    ("FROM ml_train('m', 'uf', label := 'churned', test_size := 1.5)", "argument 'test_size'"),
    ("FROM ml_train('m', 'uf', label := 'churned', params := {'nope': 1}, algorithm := 'logistic')", "argument 'params'"),
    ("FROM ml_train('m', 'empty', label := 'churned')", "is empty"),
    ("FROM ml_train('m', 'uf', label := 'churned', exclude := ['nope'])", "no column 'nope'"),
    ("FROM ml_train('m', 'uf', label := 'churned', task := 'regression', algorithm := 'logistic')", "argument 'algorithm'"),
    ("FROM ml_train('m', 'dated', label := 'd')", "argument 'label'.*cannot be a label"),
    ("SELECT ml_predict('chrun', u) FROM uf u", "no model named 'chrun'"),
])
def test_bad_input_gets_a_clear_error(con, churn_table, sql, match):
    con.execute("CREATE TABLE empty AS SELECT * FROM uf LIMIT 0")
    con.execute("CREATE TABLE dated AS SELECT recency_days, DATE '2024-01-01' + (user_id % 30)::INT AS d FROM uf")
    con.execute("FROM train_churn('uf', algorithm := 'logistic')").fetchall()
    with pytest.raises(duckdb.Error, match=match):
        con.execute(sql).fetchall()
    assert con.execute("SELECT count(*) FROM uf").fetchone() == (1500,)
    assert con.execute("SELECT count(*) FROM ml_models()").fetchone() == (1,)


def test_predict_needs_a_whole_row(con, churn_table):
    con.execute("FROM train_churn('uf', algorithm := 'logistic')").fetchall()
    with pytest.raises(duckdb.Error, match="argument 'row': expected a whole row"):
        con.execute("SELECT predict_churn(recency_days) FROM uf").fetchall()
    with pytest.raises(duckdb.Error, match="argument 'row': the row has no field 'support_tickets'"):
        con.execute("SELECT predict_churn(x) FROM (SELECT recency_days, frequency, monetary, channel FROM uf) x").fetchall()


def test_one_query_can_score_rows_with_different_models(con, churn_table):
    con.execute("FROM ml_train('a', 'uf', label := 'churned', algorithm := 'logistic')").fetchall()
    con.execute("FROM ml_train('b', 'uf', label := 'churned', algorithm := 'decision_tree')").fetchall()
    pa_, pb = scores(con, "a"), scores(con, "b")
    mixed = con.execute("""SELECT ml_predict(CASE WHEN user_id % 3 = 0 THEN 'a' WHEN user_id % 3 = 1 THEN 'b' END, t)
                           FROM uf t ORDER BY user_id""").fetchall()
    got = [r[0] for r in mixed]
    uid = np.arange(1, 1501)
    assert np.allclose([g for g, u in zip(got, uid) if u % 3 == 0], pa_[uid % 3 == 0])
    assert np.allclose([g for g, u in zip(got, uid) if u % 3 == 1], pb[uid % 3 == 1])
    assert all(g is None for g, u in zip(got, uid) if u % 3 == 2)
