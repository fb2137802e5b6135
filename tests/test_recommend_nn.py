"""The two-tower recommender (method := 'two_tower'): it learns tastes from in-batch negatives, repeats with a
fixed seed, stores as plain arrays, and runs through recommend_items / evaluate_recommender / ml_train /
similar_items on a DuckDB file. TensorFlow must be installed (CI installs it); the missing-TensorFlow test runs a
separate interpreter where the import fails."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import warehouse_ml as wml
from warehouse_ml.tasks import recommend as rk
from warehouse_ml.tasks.recommend_nn import TwoTowerRecommender

from .conftest import REPO, errors_without_tensorflow, run_without_tensorflow

pytest.importorskip("tensorflow")

FAST = {"epochs": 8, "dim": 32}


def _pairs(n_users=600, n_items=150, n=9000, seed=0):
    d = rk.synthetic_interactions(n_users=n_users, n_items=n_items, n_interactions=n, n_clusters=10, seed=seed)
    key = d["user"] * n_items + d["item"]
    uniq, inv = np.unique(key, return_inverse=True)
    t = np.full(len(uniq), np.inf)
    np.minimum.at(t, inv, d["time"])
    return uniq // n_items, uniq % n_items, np.bincount(inv).astype(np.float32), t, d


def test_two_tower_learns_tastes_and_beats_popularity():
    users, items, w, t, _ = _pairs()
    res = {r.method: r for r in rk.evaluate_methods(users, items, w, 600, 150, {"popular": {}, "two_tower": FAST}, 10,
                                                    time=t)}
    tt, pop = res["two_tower"].metrics, res["popular"].metrics
    assert tt["ndcg_at_k"] > 2 * pop["ndcg_at_k"], (tt, pop)
    assert tt["recall_at_k"] > 2 * pop["recall_at_k"]
    assert tt["coverage"] > 0.5  # personal, not the same list for everyone


def test_two_tower_is_deterministic_excludes_seen_and_round_trips_as_arrays():
    users, items, w, _, _ = _pairs(n_users=300, n_items=80, n=4000, seed=1)
    X = rk.interaction_matrix(users, items, w, 300, 80)
    a = TwoTowerRecommender(epochs=2, dim=16).fit(X)
    b = TwoTowerRecommender(epochs=2, dim=16).fit(X)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    c = TwoTowerRecommender(epochs=2, dim=16, random_state=1).fit(X)
    assert not np.array_equal(a.item_factors, c.item_factors)
    assert a.losses_[-1] < a.losses_[0]
    top, scores = a.recommend(np.arange(300), X, 10)
    seen = X.toarray() > 0
    assert not seen[np.arange(300)[:, None], top].any()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    arrays = a.to_arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    loaded = TwoTowerRecommender.from_arrays(arrays, a.params)
    top2, _ = loaded.recommend(np.arange(300), X, 10)
    np.testing.assert_array_equal(top, top2)


def test_items_without_training_interactions_rank_last():
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 0]], dtype=np.float32))
    rec = TwoTowerRecommender(epochs=3, dim=4, batch_size=4).fit(X)
    top, _ = rec.recommend(np.array([0]), X[[0]], 2, exclude_seen=True)
    assert top[0].tolist() == [2, 3]  # item 3 was never interacted with: last


def test_parameters_are_checked():
    with pytest.raises(wml.errors.InvalidArgument, match="'batch_size' of method 'two_tower' must be at least 2"):
        TwoTowerRecommender(batch_size=1)
    with pytest.raises(wml.errors.InvalidArgument, match="did you mean 'epochs'"):
        TwoTowerRecommender(epoch=3)
    assert "two_tower" not in rk.available_methods()  # the default comparison stays fast


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tt") / "t.duckdb")
    _, _, _, _, d = _pairs(n_users=500, n_items=120, n=8000, seed=2)
    df = pd.DataFrame({"customer_id": d["user"] + 1, "sku": np.char.add("p", d["item"].astype(str)),
                       "event_type": d["event"], "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(d["time"], unit="s")})
    con = wml.connect(path)
    con.register("df", df)
    con.execute("CREATE TABLE events AS SELECT * FROM df")
    con.unregister("df")
    yield con, path
    con.close()


def test_recommend_items_and_evaluate_through_sql(shop):
    con, _ = shop
    params = "params := {'epochs': 6, 'dim': 32}"
    rows = con.execute(f"FROM recommend_items('events', 5, method := 'two_tower', {params})").df()
    assert list(rows.columns) == ["user", "rank", "item", "score"]
    assert rows.groupby("user").size().eq(5).all() and rows["user"].nunique() == 500
    seen = set(map(tuple, con.execute("SELECT DISTINCT CAST(customer_id AS VARCHAR), sku FROM events").fetchall()))
    assert not any((u, i) in seen for u, i in zip(rows["user"], rows["item"]))
    ev = con.execute(f"FROM evaluate_recommender('events', 10, methods := ['two_tower'], {params})").df()
    assert set(ev["method"]) == {"popular", "two_tower"}
    m = ev.set_index("method")
    assert m.loc["two_tower", "ndcg_at_k"] > 1.5 * m.loc["popular", "ndcg_at_k"], ev
    default = con.execute("SELECT method FROM evaluate_recommender('events', 10)").fetchall()
    assert ("two_tower",) not in default


def test_ml_train_two_tower_then_lookup_in_a_process_without_tensorflow(tmp_path):
    path = str(tmp_path / "t.duckdb")
    users, items, w, _, _ = _pairs(n_users=400, n_items=100, n=6000, seed=3)
    con = wml.connect(path)
    con.register("df", pd.DataFrame({"user_id": users, "item_id": items, "qty": w}))
    con.execute("CREATE TABLE baskets AS SELECT * FROM df")
    con.unregister("df")
    row = con.execute("FROM ml_train('tt', 'baskets', task := 'recommend', method := 'two_tower', weight := 'qty', "
                      "params := {'epochs': 6, 'dim': 32})").df().iloc[0]
    assert row["algorithm"] == "two_tower"
    assert any(n.startswith("two_tower trained 6 epochs") for n in row["notes"]), row["notes"]
    assert row["metrics"]["ndcg_at_k"] > 1.5 * row["metrics"]["popular_ndcg_at_k"]
    assert con.execute("SELECT format FROM wml.model_versions WHERE model = 'tt'").fetchone()[0] == "npz"
    before = con.execute("FROM recommend_items('tt', 3) ORDER BY \"user\", rank").fetchall()
    assert len(before) == 400 * 3
    sim = con.execute("FROM similar_items('tt', 3) WHERE item = '1'").fetchall()
    assert len(sim) == 3 and all(-1 - 1e-6 <= s[3] <= 1 + 1e-6 for s in sim)  # cosine of the item vectors
    con.close()
    # the stored towers are plain arrays: looking them up needs neither TensorFlow nor pickles
    out = run_without_tensorflow(f"""
        sys.path.insert(0, {str(REPO)!r})
        import warehouse_ml as wml
        con = wml.connect({path!r})
        for r in con.execute('FROM recommend_items(\\'tt\\', 3) ORDER BY "user", rank').fetchall():
            print(repr(r))
    """, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [repr(r) for r in before]


def test_missing_tensorflow_is_a_clear_error_and_classical_methods_still_work(tmp_path):
    lines, errors = errors_without_tensorflow(f"""
        con = wml.connect({str(tmp_path / 't.duckdb')!r})
        con.execute("CREATE TABLE ev AS SELECT i % 50 AS user_id, (i * 7) % 30 AS item_id FROM range(600) t(i)")
        print("item_knn rows:", con.execute("SELECT count(*) FROM recommend_items('ev', 3, method := 'item_knn')").fetchone()[0])
    """, ["FROM recommend_items('ev', 3, method := 'two_tower')",
          "FROM evaluate_recommender('ev', 3, methods := ['two_tower'])",
          "FROM ml_train('m', 'ev', task := 'recommend', method := 'two_tower')"], tmp_path)
    assert "item_knn rows: 150" in lines
    assert len(errors) == 3, lines
    for e in errors:
        assert "MissingDependency" in e and "method := 'two_tower' needs TensorFlow" in e
        assert "pip install tensorflow-cpu" in e
