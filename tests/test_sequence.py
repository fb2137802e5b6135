"""Next-purchase GRU (task := 'sequence'): sequence building, real TensorFlow training on an event log whose
order carries the signal, the NumPy forward pass against Keras, SQL on a DuckDB file (train, score, reconnect,
score without TensorFlow) and bad input that changes nothing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import warehouse_ml as wml
from warehouse_ml.tasks import sequence as sq

from .conftest import REPO, run_without_tensorflow

pytest.importorskip("tensorflow")

START = pd.Timestamp("2024-01-01")
TYPES = {"view": 1, "cart": 2, "purchase": 3}
SMALL = ("params := {event: 'event_type', horizon_days: 7, epochs: 6, batch_size: 64, max_len: 16, units: 16, "
         "windows: 3}")


def _log(d: dict) -> sq.EventLog:
    order = np.lexsort((d["day"], d["user_id"]))
    d = {k: v[order] for k, v in d.items()}
    users, codes = np.unique(d["user_id"], return_inverse=True)
    return sq.EventLog(user=codes.astype(np.int64), t=d["day"] * sq.DAY,
                       event=np.array([TYPES[e] for e in d["event_type"]], np.int32),
                       purchase=d["event_type"] == "purchase", user_ids=users.astype(str))


def _frame(n_users=300, days=120, seed=1) -> pd.DataFrame:
    d = sq.synthetic_events(n_users, days, seed)
    return pd.DataFrame({"user_id": d["user_id"], "product_id": d["product_id"], "event_type": d["event_type"],
                         "ts": START + pd.to_timedelta(d["day"], unit="D")})


def _table(con, name="events", **kw):
    con.register("df", _frame(**kw))
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM df")
    con.unregister("df")


def _versions(con) -> int:
    return con.execute("SELECT count(*) FROM wml.model_versions").fetchone()[0]


# -- sequence building -------------------------------------------------------------------------------------------
def test_build_examples_right_pads_keeps_the_last_events_and_labels_the_window():
    # user 0: view d1, cart d2, purchase d3, view d5, purchase d9 (after the cutoff d6, within 4 days)
    # user 1: view d0.5 only; user 2: first event after the cutoff (no example)
    log = sq.EventLog(user=np.array([0, 0, 0, 0, 0, 1, 2]), t=np.array([1, 2, 3, 5, 9, 0.5, 7.0]) * sq.DAY,
                      event=np.array([1, 2, 3, 1, 3, 1, 1], np.int32),
                      purchase=np.array([0, 0, 1, 0, 1, 0, 0], bool), user_ids=np.array(["a", "b", "c"]))
    ex = sq.build_examples(log, 6 * sq.DAY, max_len=3, n_event_ids=5, recent_s=2 * sq.DAY, horizon_s=4 * sq.DAY)
    assert ex.users.tolist() == [0, 1]
    assert ex.event.tolist() == [[2, 3, 1], [1, 0, 0]]  # the last 3 events, right-padded
    assert ex.n_events.tolist() == [4, 1]
    assert ex.label.tolist() == [1.0, 0.0]
    np.testing.assert_allclose(ex.step[0, :, 0], np.log1p([1, 1, 2]))  # days since the previous event
    np.testing.assert_allclose(ex.step[0, :, 1], np.log1p([4, 3, 1]))  # days from the event to the cutoff
    np.testing.assert_allclose(ex.step[1], [[0, np.log1p(5.5)], [0, 0], [0, 0]], rtol=1e-6)  # padding is 0
    names = sq.aggregate_names(["view", "cart", "purchase"])
    a = dict(zip(names, ex.agg[0]))
    assert len(names) == ex.agg.shape[1]
    np.testing.assert_allclose([a["log_days_since_last_event"], a["log_days_since_last_purchase"], a["has_purchase"],
                                a["log_count_view"], a["log_recent_count_view"], a["log_purchases"]],
                               np.log1p([1, 3, np.e - 1, 2, 1, 1]), rtol=1e-6)
    assert sq.build_examples(log, 0.1 * sq.DAY, 3, 5, sq.DAY).users.size == 0


# -- training ----------------------------------------------------------------------------------------------------
def test_gru_learns_from_the_sequence_alone_and_numpy_equals_keras():
    # aggregates off: only the recurrent path can find the signal (a pending cart shows in the order of events)
    log = _log(sq.synthetic_events(400, 150, 0))
    p = sq.check_params({"horizon_days": 7, "max_len": 10, "epochs": 6, "batch_size": 64, "aggregates": False})
    h, as_of = 7 * sq.DAY, 140 * sq.DAY
    train = sq.Examples.concat([sq.build_examples(log, as_of - k * h, 10, 5, h, h) for k in range(1, 5)])
    test = sq.build_examples(log, as_of, 10, 5, h, h)
    model, info = sq.fit_gru(train, p, ["view", "cart", "purchase"], None)
    p_gru = model.predict_proba(test)
    np.testing.assert_allclose(p_gru, sq.keras_forward_check(model, info["keras_model"], test), atol=1e-5)
    gru = sq.classification_metrics(test.label, p_gru)["roc_auc"]
    logistic = sq.classification_metrics(test.label, sq.fit_baseline(train).predict_proba(test.agg)[:, 1])["roc_auc"]
    recency = sq.classification_metrics(test.label, -test.agg[:, 0])["roc_auc"]  # sooner last event, likelier
    assert gru > 0.7 and gru > recency + 0.05, (gru, recency)
    assert gru > logistic, (gru, logistic)  # the sequence alone beats every count the baseline sees
    assert any("gru trained" in n and "sequences/s" in n for n in model.notes)
    # stored as plain arrays (no pickles, no Keras) and scored the same after a round trip
    arrays = model.to_arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    np.testing.assert_array_equal(sq.SequenceModel.from_arrays(arrays).predict_proba(test), p_gru)


# -- SQL ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("seq") / "t.duckdb")
    con = wml.connect(path)
    _table(con)
    row = con.execute("FROM ml_train('np', 'events', task := 'sequence', user := 'user_id', time := 'ts', "
                      f"item := 'product_id', {SMALL})").df().iloc[0]
    scores = con.execute("FROM ml_predict_sequence('np', 'events') ORDER BY \"user\"").fetchall()
    user_type = con.execute("SELECT typeof(user_id) FROM events LIMIT 1").fetchall()[0][0]
    assert str(con.sql("FROM ml_predict_sequence('np', 'events')").types[0]) == user_type  # the key keeps its type
    con.close()
    return path, row, scores


def test_ml_train_sequence_through_sql_reports_the_holdout_and_the_baseline(trained):
    path, row, scores = trained
    assert (row["task"], row["algorithm"], row["version"]) == ("sequence", "gru", 1)
    m = row["metrics"]
    assert {"roc_auc", "pr_auc", "baseline_roc_auc", "baseline_pr_auc", "positive_rate"} <= set(m)
    assert m["roc_auc"] > 0.68 and m["roc_auc"] > m["baseline_roc_auc"] - 0.03, m  # with the aggregates
    assert m["horizon_days"] == 7 and m["windows"] == 3
    assert row["n_test"] == m["n_users_test"] and row["n_train"] == m["n_sequences_train"]
    assert [c["algorithm"] for c in row["candidates"]] == ["gru", "logistic_recency_frequency"]
    notes = " | ".join(row["notes"])
    assert "as_of defaulted to" in notes and "ROC AUC gru" in notes and "ml_predict_sequence('np', 'events')" in notes
    assert len(scores) == 300 and all(0 <= s[1] <= 1 and s[2] > 0 for s in scores)


def test_scores_persist_across_reconnect_and_need_no_tensorflow(trained):
    path, _, scores = trained
    con = wml.connect(path)
    try:
        assert con.execute("FROM ml_predict_sequence('np', 'events') ORDER BY \"user\"").fetchall() == scores
        ranked = con.execute("FROM ml_predict_sequence('np', 'events')").fetchall()
        assert [r[1] for r in ranked] == sorted((r[1] for r in ranked), reverse=True)  # likeliest buyers first
        early = con.execute("FROM ml_predict_sequence('np', 'events', as_of := DATE '2024-02-01')").fetchall()
        n_early = con.execute("SELECT count(DISTINCT user_id) FROM events WHERE ts <= DATE '2024-02-01'").fetchone()[0]
        assert len(early) == n_early < 300
        with pytest.raises(Exception, match=r"sequence model.*ml_predict_sequence\('np', 'events'\)"):
            con.execute("SELECT ml_predict('np', e) FROM events e LIMIT 1").fetchall()
        assert con.execute("SELECT task, is_active FROM ml_models() WHERE model = 'np'").fetchall() == [("sequence", True)]
    finally:
        con.close()
    out = run_without_tensorflow(f"""
        sys.path.insert(0, {str(REPO)!r})
        import warehouse_ml as wml
        con = wml.connect({path!r})
        for r in con.execute('FROM ml_predict_sequence(\\'np\\', \\'events\\') ORDER BY "user"').fetchall():
            print(repr(r))
    """)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [repr(r) for r in scores]


@pytest.mark.slow
def test_train_and_predict_next_purchase_macros(con):
    _table(con, n_users=150, days=90, seed=2)
    row = con.execute("FROM train_next_purchase('events', horizon_days := 7, as_of := DATE '2024-03-01', "
                      "params := {epochs: 2, max_len: 8, units: 8, windows: 2})").df().iloc[0]
    assert row["model"] == "next_purchase" and row["metrics"]["horizon_days"] == 7
    assert any("as_of 2024-03-01" in n for n in row["notes"])
    out = con.execute("FROM predict_next_purchase('events') LIMIT 3").df()
    assert list(out.columns) == ["user", "p_purchase", "n_events"] and len(out) == 3


# -- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    ("user := 'usr_id', time := 'ts'", r"no column 'usr_id' \(argument 'user'\). Did you mean 'user_id'"),
    ("user := 'user_id', time := 'ts', params := {event: 'event_typ'}", r"argument 'event'\). Did you mean 'event_type'"),
    ("user := 'user_id', params := {horizon_days: 0}", r"argument 'horizon_days': horizon_days must be a number of days"),
    ("user := 'user_id', params := {horizon_days: -3}", r"argument 'horizon_days'"),
    ("user := 'user_id', params := {as_of: '2020-01-01'}", r"argument 'as_of': no events of 'events' are on or before"),
    ("user := 'user_id', params := {as_of: '2030-01-01'}", r"argument 'as_of': the test window .* after the last event"),
    ("user := 'user_id', params := {as_of: 'last tuesday'}", r"argument 'as_of': cannot read 'last tuesday'"),
    ("user := 'user_id', params := {epoch: 3}", r"'epoch' is not a parameter of task 'sequence'. Did you mean 'epochs'"),
    ("user := 'user_id', params := {purchase_event: 'buy'}", r"argument 'purchase_event': no event of type 'buy'"),
    ("user := 'user_id', label := 'event_type'", r"argument 'label': a sequence model builds its label"),
    ("user := 'user_id', time := 'user_id'", r"argument 'time': column 'user_id' has type BIGINT"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(con, call, message):
    _table(con, n_users=40, days=60)
    before = _versions(con)
    with pytest.raises(Exception, match=message):
        con.execute(f"FROM ml_train('np', 'events', task := 'sequence', {call})").fetchall()
    assert _versions(con) == before
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] > 0


def test_relation_carrying_sql_and_scoring_errors(con):
    _table(con, n_users=40, days=60)
    with pytest.raises(Exception, match="UnknownRelation: no table or view named 'events; DROP TABLE events'"):
        con.execute("FROM ml_train('np', 'events; DROP TABLE events', task := 'sequence')").fetchall()
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] > 0 and _versions(con) == 0
    with pytest.raises(Exception, match="no model named 'nope'"):
        con.execute("FROM ml_predict_sequence('nope', 'events')").fetchall()
    con.execute("FROM ml_train('pop', 'events', task := 'recommend', method := 'popular', user := 'user_id', "
                "item := 'product_id')").fetchall()
    with pytest.raises(Exception, match="model 'pop' is a recommend model, not a sequence model"):
        con.execute("FROM ml_predict_sequence('pop', 'events')").fetchall()
