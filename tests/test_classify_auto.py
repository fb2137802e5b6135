"""Classifier auto: the one-standard-error choice, calibration when it helps, Brier score and ECE in the metrics."""
from __future__ import annotations

import numpy as np
import pytest

import warehouse_ml as wml
from warehouse_ml.tasks import supervised as sv


def _candidate(algorithm, folds, metric="roc_auc"):
    folds = np.asarray(folds, dtype=float)
    return {"algorithm": algorithm, "cv_score": folds.mean(), "metric": metric, "folds": folds.tolist()}


def test_one_standard_error_rule_prefers_the_simpler_model_within_the_noise_at_a_bounded_price():
    noisy_gbm = _candidate("gbm", [0.80, 0.86, 0.79, 0.84, 0.83])
    logistic = _candidate("logistic", [0.8010, 0.8590, 0.7890, 0.8400, 0.8300])  # 0.0002 lower, SE 0.0004: kept
    assert sv.choose([noisy_gbm, logistic]) == "logistic"
    # 0.006 lower on average, inside the paired SE (0.011) but a price of 0.006 AUC: the best wins
    assert sv.choose([noisy_gbm, _candidate("logistic", [0.83, 0.83, 0.77, 0.85, 0.81])]) == "gbm"
    # 0.0004 lower but on every fold (SE 0.0001): outside the noise, so the best wins
    assert sv.choose([noisy_gbm, _candidate("logistic", [0.7996, 0.8595, 0.7896, 0.8397, 0.8294])]) == "gbm"
    clear_gbm = _candidate("gbm", [0.86, 0.87, 0.85, 0.88, 0.86])  # better on every fold
    assert sv.choose([clear_gbm, logistic]) == "gbm"
    # gbm is within the noise of the blend but logistic is not: the best wins, not the intermediate model
    blend = _candidate("blend", [0.88, 0.89, 0.86, 0.90, 0.88])
    assert sv.choose([blend, clear_gbm, logistic]) == "blend"
    # lower is better for RMSE: the simpler model still wins within the noise
    rmse = [1.0, 1.2, 0.9]
    assert sv.choose([_candidate("gbm", rmse, "rmse"), _candidate("linear", [1.0005, 1.1998, 0.9003], "rmse")]) == "linear"
    assert sv.choose([_candidate("gbm", rmse, "rmse"), _candidate("linear", [1.02, 1.15, 0.95], "rmse")]) == "gbm"


def test_expected_calibration_error_known_answers():
    y = np.array([1, 0, 1, 0, 1, 1, 0, 0], bool)
    assert sv.expected_calibration_error(y, np.full(8, 0.5)) == pytest.approx(0.0)  # half positive, all 0.5
    # two bins: p=0.1 holds 4 rows with 3 positives (|0.75-0.1|), p=0.9 holds 4 rows with 1 positive (|0.25-0.9|)
    p = np.array([0.1, 0.1, 0.1, 0.9, 0.9, 0.1, 0.9, 0.9])
    assert sv.expected_calibration_error(y, p) == pytest.approx(0.5 * 0.65 + 0.5 * 0.65)


def test_platt_scaling_is_found_to_help_only_miscalibrated_scores():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.02, 0.6, 4000)
    y = rng.random(4000) < true_p
    folds = np.arange(4000) % 5
    raw, platt = sv.calibration_gain(y, true_p, folds)
    assert platt >= raw * 0.995  # already calibrated: scaling cannot help
    raw, platt = sv.calibration_gain(y, np.sqrt(true_p), folds)  # overconfident in the positive class
    assert platt < 0.9 * raw


def _table(rng, n, interaction: bool):
    X = rng.normal(size=(n, 4))
    logit = X[:, 0] * X[:, 1] * 2.5 if interaction else 1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y


@pytest.mark.slow  # two auto searches (3 candidates x 10 folds): 10-40 s on two busy cores
def test_auto_keeps_logistic_on_linear_data_and_takes_trees_for_interactions():
    rng = np.random.default_rng(1)
    cats = np.zeros(4, bool)
    X, y = _table(rng, 700, interaction=False)
    fit = sv.fit_supervised(X, y, task="classification", algorithm="auto", categorical=cats)
    assert fit.algorithm == "logistic"
    assert any(n.startswith("auto chose logistic by cross-validated roc_auc") and "±" in n for n in fit.notes)
    assert [c["chosen"] for c in fit.candidates].count(True) == 1
    assert {"brier", "ece", "roc_auc"} <= set(fit.metrics)
    X, y = _table(rng, 700, interaction=True)
    fit = sv.fit_supervised(X, y, task="classification", algorithm="auto", categorical=cats)
    assert fit.algorithm in ("gbm", "blend")  # a linear model alone cannot see a product of two features
    linear = sv.fit_supervised(X, y, task="classification", algorithm="logistic", categorical=cats)
    assert fit.metrics["roc_auc"] > linear.metrics["roc_auc"] + 0.1


def test_ml_evaluate_reports_brier_and_calibration_error(tmp_path):
    con = wml.connect(str(tmp_path / "c.duckdb"))
    try:
        rng = np.random.default_rng(2)
        X, y = _table(rng, 400, interaction=False)
        con.execute("CREATE TABLE t AS SELECT unnest($1) AS a, unnest($2) AS b, unnest($3) AS c, unnest($4) AS y",
                    [X[:, 0].tolist(), X[:, 1].tolist(), X[:, 2].tolist(), y.tolist()])
        con.execute("FROM ml_train('m', 't', label := 'y', algorithm := 'logistic')").fetchall()
        metrics = dict(con.execute("FROM ml_evaluate('m', 't')").fetchall())
        assert 0 < metrics["brier"] < 0.25 and 0 <= metrics["ece"] < 0.2 and metrics["roc_auc"] > 0.7
    finally:
        con.close()


@pytest.mark.slow  # two auto searches on 1,000 rows: 10-25 s on two busy cores
def test_auto_cross_validation_keeps_each_users_rows_in_one_fold():
    """200 users x 5 near-copies of one row, labels that are noise per user: folds that split a user's rows let
    gradient boosting recognise the user and score far above chance; grouped folds see chance."""
    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(200), 5)
    X = rng.normal(size=(200, 4))[users] + rng.normal(scale=0.01, size=(1000, 4))
    y = rng.integers(0, 2, 200)[users]
    cats = np.zeros(4, bool)

    def gbm_cv(groups):
        fit = sv.fit_supervised(X, y, task="classification", algorithm="auto", categorical=cats, groups=groups)
        return next(c["cv_score"] for c in fit.candidates if c["algorithm"] == "gbm")

    assert gbm_cv(None) > 0.75  # row-wise folds: the same user on both sides of every fold
    assert gbm_cv(users) < 0.62


@pytest.mark.slow  # one auto search: 5-15 s on two busy cores
def test_calibration_maps_scores_monotonically_so_auc_is_unchanged():
    """Balanced class weights on 14% positives inflate the probabilities: auto calibrates them, and the
    calibrated model ranks the hold-out exactly as the model inside it does (same ROC AUC)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    X = rng.normal(size=(800, 4))
    y = (rng.random(800) < 1 / (1 + np.exp(-(1.5 * X[:, 0] - X[:, 1] - 2.8)))).astype(np.int64)
    fit = sv.fit_supervised(X, y, task="classification", algorithm="auto", categorical=np.zeros(4, bool),
                            params={"class_weight": "balanced"})
    assert any(n.startswith("probabilities calibrated") for n in fit.notes)
    _, X_te, _, y_te = sv.split_holdout(X, y, "classification", 0.2)
    inner = fit.estimator.calibrated_classifiers_[0].estimator  # the same model, fitted on every training row
    calibrated = fit.estimator.predict_proba(X_te)[:, 1]
    assert np.mean(calibrated) < np.mean(inner.predict_proba(X_te)[:, 1]) - 0.1  # the weights' inflation removed
    assert fit.metrics["roc_auc"] == pytest.approx(roc_auc_score(y_te, inner.predict_proba(X_te)[:, 1]), abs=1e-12)


def test_auto_fits_imbalanced_labels_without_class_weights_and_says_so():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 1.2).astype(np.int64)  # about 11% positive
    notes = sv.fit_supervised(X, y, task="classification", algorithm="auto", categorical=np.zeros(3, bool)).notes
    assert any("auto fits without class weights" in n for n in notes)
    assert sv.fit_supervised(X, y, task="classification", algorithm="logistic",
                             categorical=np.zeros(3, bool)).params["class_weight"] == "balanced"
