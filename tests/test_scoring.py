"""The lean scorers behind ml_predict equal each estimator's own predict/predict_proba, in plain SQL."""
from __future__ import annotations

import numpy as np
import pytest

from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.tasks import supervised as sv
from warehouse_ml.tasks.compiled import LinearScorer, fast_scorer
from warehouse_ml.tasks.features import Featurizer
from warehouse_ml.tasks.trees import HgbForest, SkTreeForest

CASES = [("logistic", "churned", LinearScorer), ("gbm", "churned", HgbForest),
         ("random_forest", "churned", SkTreeForest), ("decision_tree", "churned", SkTreeForest),
         ("linear", "monetary", LinearScorer), ("gbm", "monetary", HgbForest), ("random_forest", "monetary", SkTreeForest)]


@pytest.mark.parametrize("algorithm,label,scorer_type", CASES)
def test_plain_sql_scores_equal_the_estimator(con, churn_table, algorithm, label, scorer_type):
    # rows the model never saw: NULLs in a number, a category it never met, and a NULL category
    con.execute("""CREATE TABLE fresh AS SELECT * REPLACE (
                       CASE WHEN user_id % 7 = 0 THEN NULL ELSE recency_days END AS recency_days,
                       CASE WHEN user_id % 11 = 0 THEN 'tiktok' WHEN user_id % 13 = 0 THEN NULL ELSE channel END AS channel)
                   FROM uf""")
    con.execute(f"FROM ml_train('m', 'uf', label := '{label}', algorithm := '{algorithm}')").fetchall()
    sm = runtime_for(con).store.load("m")
    scorer = fast_scorer(sm.obj, sm.task, sm.features)
    assert isinstance(scorer, scorer_type)  # the lean path, not the fallback
    table = con.sql("FROM fresh ORDER BY user_id").to_arrow_table()
    X = Featurizer.from_json(sm.features).transform(table)
    want = sv.score(sm.obj, X, sm.task)  # scikit-learn's own predict_proba / predict
    got = np.array([r[0] for r in con.execute("SELECT ml_predict('m', f) FROM fresh f ORDER BY user_id").fetchall()])
    assert np.isnan(want).sum() == 0 and len(got) == len(want) == 1500
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_multiclass_forest_scores_the_predicted_class(con):
    con.execute("CREATE TABLE t AS SELECT range AS id, random() AS a, random() AS b FROM range(600)")
    con.execute("ALTER TABLE t ADD COLUMN k VARCHAR")
    con.execute("UPDATE t SET k = CASE WHEN a < 0.33 THEN 'low' WHEN a + b < 1.2 THEN 'mid' ELSE 'high' END")
    con.execute("FROM ml_train('k3', 't', label := 'k', algorithm := 'random_forest')").fetchall()
    sm = runtime_for(con).store.load("k3")
    X = Featurizer.from_json(sm.features).transform(con.sql("FROM t ORDER BY id").to_arrow_table())
    got = np.array([r[0] for r in con.execute("SELECT ml_predict('k3', t) FROM t ORDER BY id").fetchall()])
    np.testing.assert_allclose(got, sm.obj.predict_proba(X).max(axis=1), rtol=0, atol=1e-12)


def test_big_matrices_split_over_threads_give_the_same_scores(con, churn_table):
    con.execute("FROM ml_train('g', 'uf', label := 'churned', algorithm := 'gbm')").fetchall()
    sm = runtime_for(con).store.load("g")
    X = Featurizer.from_json(sm.features).transform(con.sql("FROM uf").to_arrow_table())
    big = np.tile(X, (60, 1))  # 90,000 rows: above the size scored on one thread
    scorer = HgbForest(sm.obj)
    np.testing.assert_allclose(scorer(big), sm.obj.predict_proba(big)[:, 1], rtol=0, atol=1e-12)


def test_batch_encoder_equals_transform_on_every_column_kind(con):
    """ml_predict's per-batch featurising (tasks/batches.py) against Featurizer.transform: NULL, NaN, inf and -inf
    numbers, integers, text holding numbers, unseen and NULL categories, large strings, and slices of a batch."""
    import pyarrow as pa

    from warehouse_ml.tasks.batches import BatchEncoder

    con.execute("""CREATE TABLE k AS SELECT range AS id,
                       CASE range % 9 WHEN 0 THEN NULL WHEN 1 THEN 'nan'::DOUBLE WHEN 2 THEN 'inf'::DOUBLE
                                      WHEN 3 THEN '-inf'::DOUBLE ELSE random() END AS x,
                       (range % 13)::INTEGER AS n, CAST(range % 5 AS VARCHAR) || CASE WHEN range % 23 = 0 THEN 'x' ELSE '' END AS txt,
                       CASE WHEN range % 7 = 0 THEN NULL ELSE ['a', 'bb', 'ccc', 'é'][1 + range % 4] END AS cat,
                       random() AS z FROM range(3000)""")
    table = con.sql("FROM k").to_arrow_table()
    feats = Featurizer.fit(table, None, ["id"])
    feats.features[2] = {"name": "txt", "kind": "numeric"}  # text read as numbers (unparsable -> missing)
    assert [f["kind"] for f in feats.features] == ["numeric", "numeric", "numeric", "categorical", "numeric"]
    feats.features[3]["categories"] = ["bb", "é", "a"]  # 'ccc' is now unseen
    rows = con.sql("SELECT k AS r FROM k k").to_arrow_table().column(0).combine_chunks()
    large = pa.StructArray.from_arrays([rows.field(i).cast(pa.large_string()) if pa.types.is_string(rows.field(i).type)
                                        else rows.field(i) for i in range(rows.type.num_fields)],
                                       names=[f.name for f in rows.type])
    encoder = BatchEncoder(feats, "m")
    for batch in (rows, rows.slice(1001, 1500), large, large.slice(7, 2048), rows.slice(0, 0)):
        got, want = encoder(batch), feats.transform(batch)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)  # NaN equals NaN here
    assert np.isnan(feats.transform(rows)[:, 0]).sum() == sum(r % 9 < 4 for r in range(3000))  # NULL, NaN, +-inf


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_packed_trees_decide_like_scikit_learn_at_thresholds_and_on_missing_values(kind):
    """SkTreeForest compares float32 x against thresholds rounded down to float32: rows placed exactly on each
    threshold and one float32 step either side, NaN sent left or right as each split learnt, on a matrix big
    enough to be split over threads."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    rng = np.random.default_rng(7)
    X = rng.normal(size=(4000, 5))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values in training: splits learn where NaN goes
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.isnan(X[:, 2]) > 0).astype(int)
    if kind == "multiclass":
        y = y + (np.nan_to_num(X[:, 3]) > 0.5)
    est = (RandomForestRegressor if kind == "regression" else RandomForestClassifier)(
        n_estimators=15, min_samples_leaf=1, random_state=0).fit(X, y.astype(float) if kind == "regression" else y)
    nan_left = np.concatenate([t.tree_.missing_go_to_left[t.tree_.children_left >= 0] for t in est.estimators_])
    assert nan_left.any() and not nan_left.all()  # both directions are exercised
    tree = est.estimators_[0].tree_
    split = (tree.children_left >= 0) & np.isfinite(tree.threshold)  # (an infinite one splits off the NaNs)
    on = np.repeat(X[:200], 3, axis=0)
    for j, (f, thr) in enumerate(zip(tree.feature[split][:200], tree.threshold[split][:200])):
        t32 = np.float32(thr)
        on[3 * j:3 * j + 3, f] = [t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))]
    big = np.vstack([np.tile(X, (20, 1)), on])  # 80,600 rows: above the size scored on one thread
    want = est.predict(big) if kind == "regression" else est.predict_proba(big)
    want = want if kind == "regression" else (want[:, 1] if kind == "binary" else want.max(axis=1))
    np.testing.assert_allclose(SkTreeForest(est)(big), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_decision_tree_as_sql_decides_like_the_packed_tree_everywhere(kind):
    """tree_sql (the front door's and ml_export_sql's decision tree) against SkTreeForest: rows on each split's
    bound as a DOUBLE and one step either side, on the float32 threshold and one float32 step either side; NaN,
    +-inf and NULL sent the way each split learnt; numbers beyond float32's range; a category unseen, rare or
    NULL. Every row's score must be the same number."""
    import duckdb
    import pyarrow as pa
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from warehouse_ml.tasks.compiled import _float32_le_bound, tree_sql

    rng = np.random.default_rng(3)
    n = 3000
    X = rng.normal(size=(n, 3)) * [1.0, 100.0, 1e-3]
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values in training: splits learn where they go
    channel = rng.choice(["organic", "paid", "email", "social", None], n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    y = (np.nan_to_num(X[:, 0]) + (channel == "paid") - np.isnan(X[:, 1]) + rng.normal(size=n) > 0.2).astype(int)
    if kind == "multiclass":
        y = y + (np.nan_to_num(X[:, 2]) > 0)
    train = pa.table({"x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "channel": channel})
    featurizer = Featurizer.fit(train, None)
    est = (DecisionTreeRegressor if kind == "regression" else DecisionTreeClassifier)(
        max_depth=8, min_samples_leaf=3, random_state=0).fit(featurizer.transform(train), y)
    tree = est.tree_
    assert tree.missing_go_to_left[tree.children_left >= 0].any() and not tree.missing_go_to_left[tree.children_left >= 0].all()

    rows = {name: list(train.column(name).to_pylist()[:50]) for name in train.column_names}
    numeric = [j for j, f in enumerate(featurizer.features) if f["kind"] == "numeric"]
    for f, thr in zip(tree.feature[tree.children_left >= 0], tree.threshold[tree.children_left >= 0]):
        if f not in numeric or not np.isfinite(thr):
            continue
        bound, t32 = _float32_le_bound(float(thr)), np.float32(thr)
        for v in (bound, np.nextafter(bound, np.inf), np.nextafter(bound, -np.inf), float(t32),
                  float(np.nextafter(t32, np.float32(np.inf))), float(np.nextafter(t32, np.float32(-np.inf)))):
            for name in rows:
                rows[name].append(float(v) if name == featurizer.features[f]["name"] else rows[name][len(rows[name]) % 50])
    odd = [np.nan, np.inf, -np.inf, None, 1e300, -1e300, 3.5e38, -3.5e38]
    for v in odd:
        for name in ("x0", "x1", "x2"):
            for other in rows:
                rows[other].append(v if other == name else rows[other][len(rows[other]) % 50])
    for c in ("unseen", None, "social"):
        for name in rows:
            rows[name].append(c if name == "channel" else rows[name][len(rows[name]) % 50])
    table = pa.table({"row_id": np.arange(len(rows["x0"])), **{k: pa.array(v, train.column(k).type) for k, v in rows.items()}})

    sql = tree_sql(est, featurizer.features, "t")
    con = duckdb.connect()
    con.register("scored", table)
    got = np.array([r[0] for r in con.execute(f"SELECT {sql} FROM scored t ORDER BY row_id").fetchall()])
    want = SkTreeForest(est)(featurizer.transform(table))
    assert len(got) > 300 and np.array_equal(got, want)
    finite = np.isfinite(featurizer.transform(table)).all(axis=1) & (np.abs(featurizer.transform(table)) < 3e38).all(axis=1)
    proba = est.predict(featurizer.transform(table)[finite]) if kind == "regression" else est.predict_proba(
        featurizer.transform(table)[finite])
    assert np.array_equal(got[finite], proba if kind == "regression" else (proba[:, 1] if kind == "binary" else proba.max(axis=1)))
