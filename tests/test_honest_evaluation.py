"""Evaluation that does not flatter: copies and one user's rows never straddle the hold-out split, and the
report draws its curves only from hold-out rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from warehouse_ml.integrations.report import build_report
from warehouse_ml.store import ModelStore


def _noise(n: int, seed: int) -> pd.DataFrame:
    """Features that carry no signal about the label: any hold-out AUC well above 0.5 is memorisation."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.random(n), "b": rng.random(n), "c": rng.random(n),
                         "label": rng.integers(0, 2, n)})


def test_exact_duplicates_stay_on_one_side_of_the_split_and_are_counted(con):
    distinct = _noise(400, seed=1)
    con.register("copies", pd.concat([distinct] * 4, ignore_index=True))
    con.execute("CREATE TABLE dup AS SELECT * FROM copies")
    auc, notes = con.execute("SELECT metrics['roc_auc'], notes FROM ml_train('dup_model', 'dup', label := 'label', "
                             "algorithm := 'random_forest')").fetchone()
    assert "1200 exact duplicate rows (copies of 400 distinct rows): copies are kept on one side of the hold-out split" in notes
    assert auc < 0.65  # a forest that memorised copies seen in training would score far above chance


def test_rows_of_one_user_stay_on_one_side_of_the_split(con):
    rng = np.random.default_rng(2)
    users = _noise(200, seed=2)
    rows = users.loc[np.repeat(users.index, 5)].reset_index(drop=True)
    rows[["a", "b", "c"]] += rng.normal(0, 0.01, (len(rows), 3))  # each row a little different: no exact copies
    rows.insert(0, "user_id", np.repeat(np.arange(200), 5))
    con.register("per_user", rows)
    con.execute("CREATE TABLE visits AS SELECT * FROM per_user")
    auc, notes = con.execute("SELECT metrics['roc_auc'], notes FROM ml_train('visit_model', 'visits', label := 'label', "
                             "algorithm := 'random_forest')").fetchone()
    assert "rows sharing a user_id (200 distinct) are kept on one side of the hold-out split" in notes
    assert not any("exact duplicate" in n for n in notes)
    assert auc < 0.65


def test_the_hold_out_scores_kept_with_the_model_are_the_ones_its_metrics_came_from(con, churn_table):
    con.execute("FROM ml_train('churn', 'uf', label := 'churned', algorithm := 'gbm')").fetchall()
    sm = ModelStore(con).describe("churn")
    held = sm.meta["holdout"]
    assert len(held["score"]) == len(held["positive"]) == con.execute(
        "SELECT n_test FROM wml.model_versions WHERE model = 'churn'").fetchone()[0]
    assert roc_auc_score(held["positive"], held["score"]) == pytest.approx(sm.metrics["roc_auc"], abs=1e-4)


def test_the_report_draws_roc_lift_and_scatter_from_hold_out_rows_only(con, churn_table):
    con.execute("FROM ml_train('churn', 'uf', label := 'churned', algorithm := 'logistic')").fetchall()
    con.execute("CREATE TABLE spend AS SELECT recency_days, frequency, support_tickets, monetary FROM uf "
                "WHERE monetary IS NOT NULL")
    con.execute("FROM ml_train('spend', 'spend', label := 'monetary', algorithm := 'linear')").fetchall()
    n_test = dict(con.execute("SELECT model, n_test FROM wml.model_versions").fetchall())
    page = build_report(con, "test")
    assert f"churn v1 on {n_test['churn']:,} hold-out rows (rows it never trained on)" in page
    assert f"spend on {n_test['spend']:,} hold-out rows (rows it never trained on)" in page
    assert "training rows included" not in page and "optimistic" not in page


def test_a_model_without_stored_hold_out_scores_gets_a_note_not_optimistic_curves(con, churn_table):
    con.execute("FROM ml_train('churn', 'uf', label := 'churned', algorithm := 'logistic', test_size := 0)").fetchall()
    page = build_report(con, "test")
    assert "curves are drawn only from rows a model never trained on. Retrain it to draw them." in page
    assert "hold-out rows (rows it never trained on)" not in page
