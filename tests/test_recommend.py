"""Recommendations: kernels without SQL, then recommend_items / similar_items / evaluate_recommender / ml_train
on real DuckDB files."""
from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import warehouse_ml as wml
from warehouse_ml.errors import InvalidArgument
from warehouse_ml.tasks import recommend as rk

HAS_IMPLICIT = rk._implicit_available()
needs_implicit = pytest.mark.skipif(not HAS_IMPLICIT, reason="implicit is not installed")


# -- kernels -----------------------------------------------------------------------------------------------------
def test_ranking_metrics_known_answers():
    # user 0: recs [1, 2, 3], relevant {1, 3}; user 1: recs [4, 5, -1], relevant {0}; user 2: no relevant items
    recs = np.array([[1, 2, 3], [4, 5, -1], [0, 1, 2]])
    rel = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]))
    m = rk.ranking_metrics(recs, rel, k=3, n_items=6)
    assert m["users"] == 2
    assert m["precision_at_k"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall_at_k"] == pytest.approx((1.0 + 0) / 2)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg_at_k"] == pytest.approx((dcg / idcg + 0) / 2)
    assert m["map_at_k"] == pytest.approx(((1 / 1 + 2 / 3) / 2 + 0) / 2)
    assert m["coverage"] == pytest.approx(6 / 6)  # items 0..5 all shown


def test_ranking_metrics_perfect_and_map_denominator():
    recs = np.array([[2, 0, 1]])
    rel = sp.csr_matrix(np.array([[1, 0, 1, 1, 1]]))  # 4 relevant, k = 3: MAP divides by min(k, 4) = 3
    m = rk.ranking_metrics(recs, rel, k=3, n_items=5)
    assert m["precision_at_k"] == pytest.approx(2 / 3)
    assert m["recall_at_k"] == pytest.approx(2 / 4)
    assert m["map_at_k"] == pytest.approx((1 + 2 / 2) / 3)
    assert rk.ranking_metrics(np.array([[0, 1]]), sp.csr_matrix(np.array([[1, 1, 0]])), 2, 3)["ndcg_at_k"] == 1.0


def test_holdout_split_takes_each_users_latest_items():
    users = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    time = np.array([5, 1, 4, 2, 3, 2, 1, 7.0])
    test = rk.holdout_split(users, 3, time, test_fraction=0.4)
    assert test.tolist() == [True, False, True, False, False, True, False, False]  # user 2 has one item: kept
    with pytest.raises(InvalidArgument, match="test_fraction"):
        rk.holdout_split(users, 3, time, test_fraction=1.5)


def test_interaction_matrix_sums_duplicates_and_drops_non_positive():
    X = rk.interaction_matrix(np.array([0, 0, 1, 1]), np.array([2, 2, 0, 1]), np.array([1, 2, 0, -1]), 2, 3)
    assert X.toarray().tolist() == [[0, 0, 3], [0, 0, 0]]


def _toy():
    # items 0-2 go together, items 3-5 go together; item 6 is popular with everyone
    rows = [[0, 1, 6], [0, 2, 6], [1, 2, 6], [0, 1, 2], [3, 4, 6], [3, 5, 6], [4, 5], [3, 4, 5], [0], [3]]
    u = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    i = np.concatenate(rows)
    return rk.interaction_matrix(u, i, None, len(rows), 7)


def test_popular_excludes_seen_and_pads_when_catalogue_runs_out():
    X = _toy()
    rec = rk.PopularRecommender().fit(X)
    items, scores = rec.recommend(np.arange(X.shape[0]), X, 7)
    assert items[0, 0] not in (0, 1, 6) and (items[0] == -1).sum() == 3  # 7 items, 3 seen
    assert np.all(np.diff(np.where(items >= 0, scores, -1e9), axis=1) <= 0)
    assert rec.recommend(np.array([0]), sp.csr_matrix((1, 7)), 1)[0][0, 0] == 6  # cold user: the most popular


@pytest.mark.parametrize("method", ["item_knn", "als"])
def test_methods_follow_co_occurrence_and_never_return_seen(method):
    if method == "als" and not HAS_IMPLICIT:
        pytest.skip("implicit is not installed")
    X = _toy()
    params = {"factors": 2, "iterations": 30, "regularization": 0.1, "weighting": "log"} if method == "als" else {}
    rec = rk.make_recommender(method, params).fit(X)
    items, scores = rec.recommend(np.arange(X.shape[0]), X, 2)
    dense = X.toarray() > 0
    for u in range(X.shape[0]):
        got = items[u][items[u] >= 0]
        assert not dense[u, got].any()
        assert len(set(got.tolist())) == len(got)
    assert items[8, 0] in (1, 2)  # user 8 saw item 0: its cluster mates come first
    assert items[9, 0] in (4, 5)
    # round trip through plain arrays (what the store keeps)
    again = rk.METHODS[method].from_arrays(rec.to_arrays(), rec.params)
    np.testing.assert_array_equal(again.recommend(np.arange(X.shape[0]), X, 2)[0], items)


def test_item_knn_fills_with_popular_items_when_similarity_runs_out():
    X = _toy()
    rec = rk.ItemKNNRecommender(neighbors=1).fit(X)
    items, scores = rec.recommend(np.array([8]), X[[8]], 5)
    assert (items >= 0).all() and 0 not in items[0]
    assert scores[0][0] > 0 and items[0][0] in (1, 2)  # item 0's one neighbour, by similarity
    assert (scores[0][1:] == 0).all()  # the slots without similarity evidence score 0 ...
    assert items[0][1] == 6  # ... and are filled most popular first


def test_similar_items_cosine():
    X = _toy()
    items, scores = rk.similar_items(None, X, 2)
    assert set(items[3].tolist()) == {4, 5}
    assert all(i not in items[i] for i in range(7))
    assert np.all((scores <= 1 + 1e-6) | ~np.isfinite(scores))


def test_parameter_validation():
    with pytest.raises(InvalidArgument, match="did you mean 'neighbors'"):
        rk.ItemKNNRecommender(neighbours=5)
    with pytest.raises(InvalidArgument, match="must be positive"):
        rk.ItemKNNRecommender(neighbors=0)
    with pytest.raises(InvalidArgument, match="'weighting'"):
        rk.ItemKNNRecommender(weighting="jaccard")
    with pytest.raises(InvalidArgument, match="'dim' of method 'two_tower'"):
        rk.make_recommender("two_tower", {"dim": 0})
    with pytest.raises(InvalidArgument, match="argument 'k'"):
        rk.check_k(0)
    with pytest.raises(InvalidArgument, match="only 7"):
        rk.check_k(8, 7)


def test_item_knn_and_als_beat_popularity_on_structured_data():
    d = rk.synthetic_interactions(n_users=600, n_items=200, n_interactions=9000, n_clusters=10, seed=1)
    X = rk.interaction_matrix(d["user"], d["item"], None, 600, 200).tocoo()
    methods = {"popular": None, "item_knn": None}
    if HAS_IMPLICIT:
        methods["als"] = {"factors": 16, "iterations": 10}
    res = {r.method: r.metrics for r in rk.evaluate_methods(X.row, X.col, X.data, 600, 200, methods, 10)}
    assert res["item_knn"]["ndcg_at_k"] > 2 * res["popular"]["ndcg_at_k"]
    assert res["item_knn"]["coverage"] > res["popular"]["coverage"]
    if HAS_IMPLICIT:
        assert res["als"]["recall_at_k"] > 1.5 * res["popular"]["recall_at_k"]


# -- SQL ---------------------------------------------------------------------------------------------------------
def _events(n_users=600, n_items=150, n=9000, seed=3) -> pd.DataFrame:
    d = rk.synthetic_interactions(n_users, n_items, n, n_clusters=8, seed=seed)
    return pd.DataFrame({
        "customer": d["user"].astype(np.int64),
        "sku": np.char.add("sku", d["item"].astype(str)),
        "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(d["time"].round(), unit="s"),
        "event_type": d["event"],
        "qty": d["qty"].astype(np.int64),
    })


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "shop.duckdb"
    con = wml.connect(str(path))
    ev = _events()
    dirty = pd.DataFrame({"customer": pd.array([None, 1, None], dtype="Int64"), "sku": ["sku1", None, None],
                          "ts": [pd.Timestamp("2024-02-01")] * 3, "event_type": ["view"] * 3, "qty": [1, 1, 1]})
    con.execute("CREATE TABLE events AS SELECT * FROM ev UNION ALL SELECT * FROM dirty")
    con.execute("INSERT INTO events SELECT * FROM events WHERE customer = 7 LIMIT 2")  # exact duplicate events
    yield con, path
    con.close()


def _err(con, q) -> str:
    with pytest.raises(duckdb.Error) as e:
        con.execute(q).fetchall()
    return str(e.value)


def test_recommend_items_default(shop):
    con, _ = shop
    out = con.execute("FROM recommend_items('events', 5, method := 'item_knn')").df()
    assert list(out.columns) == ["user", "rank", "item", "score"]
    assert out.groupby("user").size().max() == 5 and out["rank"].min() == 1
    assert out["user"].nunique() == con.execute("SELECT count(DISTINCT customer) FROM events WHERE sku IS NOT NULL").fetchone()[0]
    seen = con.execute("""SELECT count(*) FROM recommend_items('events', 5, method := 'item_knn') r
                      JOIN events e ON e.customer = r.user AND e.sku = r.item""").fetchone()[0]
    assert seen == 0  # exclude_seen is the default
    unknown = con.execute("""SELECT count(*) FROM recommend_items('events', 5, method := 'item_knn')
                         WHERE item NOT IN (SELECT sku FROM events WHERE sku IS NOT NULL)""").fetchone()[0]
    assert unknown == 0


def test_recommend_items_named_columns_and_methods(shop):
    con, _ = shop
    for method in ["popular", "item_knn"] + (["als"] if HAS_IMPLICIT else []):
        out = con.execute(f"""FROM recommend_items('events', 3, user := 'customer', item := 'sku', weight := 'qty',
                          method := '{method}', params := {{'iterations': 3}})""").df() if method == "als" else \
            con.execute(f"FROM recommend_items('events', 3, user := 'customer', item := 'sku', method := '{method}')").df()
        assert len(out) == 3 * out["user"].nunique()
        assert (out.groupby("user")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    with_seen = con.execute("""SELECT count(*) FROM recommend_items('events', 3, method := 'popular', exclude_seen := false) r
                           JOIN (SELECT DISTINCT customer, sku FROM events) e ON e.customer = r.user AND e.sku = r.item""")
    assert with_seen.fetchone()[0] > 0


def test_similar_items(shop):
    con, _ = shop
    out = con.execute("FROM similar_items('events', 4)").df()
    assert list(out.columns) == ["item", "rank", "similar_item", "score"]
    assert (out["item"] != out["similar_item"]).all()
    assert out["score"].between(0, 1.0001).all()


def test_evaluate_recommender_against_popularity(shop):
    con, _ = shop
    out = con.execute("FROM evaluate_recommender('events', 10)").df().set_index("method")
    assert out.index[0] == "popular" and "item_knn" in out.index
    assert {"precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage"} <= set(out.columns)
    assert out.loc["item_knn", "ndcg_at_k"] > 1.5 * out.loc["popular", "ndcg_at_k"]
    assert out.loc["popular", "ndcg_vs_popular"] == pytest.approx(1.0)
    assert out["best"].sum() == 1
    notes = " ".join(out["notes"].iloc[0])
    assert "2 rows with a NULL customer" in notes  # a row missing both keys counts once, under the user
    assert "1 rows with a NULL sku" in notes
    assert "duplicate" in notes


def test_event_weights_mapping(shop):
    con, _ = shop
    top_purchase = con.execute("""SELECT sku FROM events WHERE event_type = 'purchase' GROUP BY sku
                              ORDER BY count(DISTINCT customer) DESC, sum(qty) DESC LIMIT 1""").fetchone()[0]
    # only purchases count: the most popular item is the most purchased one, for a user who has not bought it
    out = con.execute("""FROM recommend_items('events', 1, method := 'popular', exclude_seen := false,
                                          event_weights := {'view': 0, 'cart': 0, 'purchase': 1})""").df()
    assert (out["item"] == top_purchase).all()
    msg = _err(con, "FROM recommend_items('events', 1, event_weights := {'view': -1})")
    assert "event_weights" in msg and "0 or more" in msg


def test_ml_train_then_lookup_and_persistence(shop):
    con, path = shop
    row = con.execute("FROM ml_train('recs', 'events', task := 'recommend', method := 'item_knn', k := 5)").df().iloc[0]
    assert row["task"] == "recommend" and row["algorithm"] == "item_knn" and row["n_test"] > 0
    assert row["metrics"]["ndcg_at_k"] > row["metrics"]["popular_ndcg_at_k"]
    assert any("NULL customer" in n for n in row["notes"]) and any("NULL sku" in n for n in row["notes"])
    from_model = con.execute("FROM recommend_items('recs', 5) ORDER BY user, rank").df()
    on_the_fly = con.execute("FROM recommend_items('events', 5, method := 'item_knn') ORDER BY user, rank").df()
    pd.testing.assert_frame_equal(from_model, on_the_fly)
    assert con.execute("SELECT count(*) FROM similar_items('recs', 3)").fetchone()[0] > 0
    assert "method" in _err(con, "FROM recommend_items('recs', 5, method := 'popular')")
    # the model travels with the file
    other = wml.connect(str(path))
    try:
        again = other.execute("FROM recommend_items('recs', 5) ORDER BY user, rank").df()
        pd.testing.assert_frame_equal(again, from_model)
    finally:
        other.close()
    v2 = con.execute("FROM ml_train('recs', 'events', task := 'recommend', method := 'popular')").fetchone()
    assert v2[1] == 2
    assert con.execute("SELECT algorithm FROM ml_models() WHERE model = 'recs' AND is_active").fetchone()[0] == "popular"


def test_cold_start_by_segment(shop):
    con, _ = shop
    con.execute("""CREATE OR REPLACE TABLE customers AS
                   SELECT customer, CASE WHEN customer % 2 = 0 THEN 'even' ELSE 'odd' END AS region
                   FROM (SELECT DISTINCT customer FROM events WHERE customer IS NOT NULL)
                   UNION ALL SELECT * FROM (VALUES (100001, 'even'), (100002, 'odd'), (100003, 'nowhere')) t(c, r)""")
    out = con.execute("""FROM recommend_items('events', 3, method := 'item_knn', for_users := 'customers',
                                          segment := 'region')""").df()
    new = out[out["user"].isin([100001, 100002, 100003])].groupby("user")["item"].apply(list)
    assert len(new) == 3 and all(len(v) == 3 for v in new)
    even_top = con.execute("""SELECT sku FROM events WHERE customer % 2 = 0 AND sku IS NOT NULL GROUP BY sku
                          ORDER BY count(DISTINCT customer) DESC, sum(1) DESC LIMIT 1""").fetchone()[0]
    assert new[100001][0] == even_top
    everyone_top = con.execute("""FROM recommend_items('events', 1, method := 'popular', exclude_seen := false)
                              LIMIT 1""").fetchone()[2]
    assert new[100003][0] == everyone_top  # an unknown segment falls back to global popularity


def test_bad_input(shop):
    con, _ = shop
    assert "argument 'k'" in _err(con, "FROM recommend_items('events', 0)")
    assert "argument 'k'" in _err(con, "FROM recommend_items('events', -3)")
    assert "only 150 distinct items" in _err(con, "FROM recommend_items('events', 151, method := 'popular')")
    msg = _err(con, "FROM recommend_items('events', 3, item := 'skuu')")
    assert "UnknownColumn" in msg and "Did you mean 'sku'" in msg
    assert "did you mean 'als'" in _err(con, "FROM recommend_items('events', 3, method := 'alss')")
    assert "'dim' of method 'two_tower'" in _err(
        con, "FROM recommend_items('events', 3, method := 'two_tower', params := {'dim': 0})")
    assert "did you mean 'neighbors'" in _err(
        con, "FROM recommend_items('events', 3, method := 'item_knn', params := {'neighbours': 3})")
    n = con.execute("SELECT count(*) FROM events").fetchone()[0]
    for fn in ("recommend_items", "similar_items", "evaluate_recommender"):
        assert "UnknownRelation" in _err(con, f"FROM {fn}('events; DROP TABLE events', 3)")
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == n


def test_no_interactions_and_ambiguous_columns(tmp_path):
    con = wml.connect(str(tmp_path / "empty.duckdb"))
    try:
        con.execute("CREATE TABLE e (user_id INTEGER, item_id VARCHAR)")
        assert "TrainingFailed" in _err(con, "FROM recommend_items('e', 3)")
        con.execute("INSERT INTO e VALUES (1, NULL), (NULL, 'a')")
        msg = _err(con, "FROM recommend_items('e', 3)")
        assert "no interactions" in msg and "1 with a NULL user_id" in msg and "1 with a NULL item_id" in msg
        con.execute("CREATE TABLE two (buyer_id INTEGER, customer_id INTEGER, sku VARCHAR)")
        msg = _err(con, "FROM recommend_items('two', 3)")
        assert "AmbiguousColumn" in msg and "user := 'column'" in msg
        con.execute("CREATE TABLE t2 (user_id INT, item_id INT, ts1 TIMESTAMP, ts2 TIMESTAMP)")
        con.execute("INSERT INTO t2 VALUES (1, 1, now(), now()), (1, 2, now(), now()), (2, 1, now(), now())")
        assert "time := 'column'" in _err(con, "FROM evaluate_recommender('t2', 1)")
        assert con.execute("SELECT count(*) FROM evaluate_recommender('t2', 1, \"time\" := 'ts2')").fetchone()[0] >= 2
        # a tiny catalogue: k equal to it works, one more is refused
        assert con.execute("SELECT count(*) FROM recommend_items('t2', 2, method := 'popular', exclude_seen := false)").fetchone()[0] == 4
    finally:
        con.close()


def test_a_model_of_another_task_is_not_a_recommender(tmp_path):
    con = wml.connect(str(tmp_path / "mixed.duckdb"))
    try:
        con.execute("CREATE TABLE tiny AS SELECT range AS x, range % 2 = 0 AS y FROM range(40)")
        con.execute("FROM ml_train('churny', 'tiny', label := 'y', algorithm := 'logistic')").fetchall()
        msg = _err(con, "FROM recommend_items('churny', 3)")
        assert "not a recommender" in msg and "task := 'recommend'" in msg
    finally:
        con.close()


# -- EASE, auto's search, business filters, key types ---------------------------------------------------------------
def test_ease_is_the_closed_form_and_refuses_huge_catalogues(monkeypatch):
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1.0]]))
    rec = rk.make_recommender("ease", {"regularization": 0.5}).fit(X)
    C = np.log1p(X.toarray())
    G = C.T @ C
    lam = 0.5 * np.diag(G).mean()
    # Steck's problem solved directly, column by column: min ||C - C b||^2 + lam ||b||^2 with b_j = 0
    for j in range(4):
        others = [i for i in range(4) if i != j]
        A = C[:, others]
        b = np.linalg.solve(A.T @ A + lam * np.eye(3), A.T @ C[:, j])
        np.testing.assert_allclose(rec.weights[others, j], b, rtol=1e-4, atol=1e-6)
        assert rec.weights[j, j] == 0
    items, _ = rec.recommend(np.array([0]), X[[0]], 2)
    assert set(items[0]) == {2, 3}  # the unseen ones
    monkeypatch.setattr(rk, "EASE_MAX_ITEMS", 3)
    with pytest.raises(InvalidArgument, match="limited to 3 items") as e:
        rk.make_recommender("ease").fit(X)
    assert e.value.argument == "method"
    choice = rk.tune(*sp.find(X)[:2], np.ones(X.nnz), 5, 4, 2, budget=5)
    assert "ease was not tried" in " ".join(choice.notes) and all(c.method != "ease" for c in choice.candidates)


def test_recency_ranks_and_recent_items_weigh_more():
    R = rk.recency_ranks(np.array([0, 0, 0, 1]), np.array([2, 0, 1, 1]), np.array([5.0, 9.0, 1.0, 3.0]), 2, 3)
    assert R.toarray().tolist() == [[1, 3, 2], [0, 1, 0]]
    # item 0 goes with item 1 and item 2 goes with item 3; the user met item 3 last
    X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 0],
                                [1, 1, 0, 0, 1], [0, 0, 1, 1, 1.0]]))
    user = sp.csr_matrix(np.array([[1, 0, 0, 1, 0.0]]))
    ranks = sp.csr_matrix(np.array([[5, 0, 0, 1, 0.0]]))
    flat = rk.make_recommender("item_knn", {"neighbors": 4}).fit(X)
    recent = rk.make_recommender("item_knn", {"neighbors": 4, "recency": 1.0}).fit(X)
    assert recent.recommend(np.array([0]), user, 1, recency=ranks)[0][0, 0] == 2
    s_flat = flat.recommend(np.array([0]), user, 2, recency=ranks)[1][0]
    assert s_flat[0] == pytest.approx(s_flat[1])  # without a half-life both neighbours tie


def test_auto_tunes_within_its_budget_and_reports_every_candidate():
    d = rk.synthetic_interactions(400, 120, 8000, seed=3)
    users, items = d["user"], d["item"]
    w = np.ones(len(users), np.float32)
    choice = rk.tune(users, items, w, 400, 120, 10, time=d["time"], budget=60)
    methods = {c.method for c in choice.candidates}
    assert {"popular", "item_knn", "ease"} <= methods
    assert len(choice.candidates) > len(methods)  # settings were tuned, not only defaults compared
    best = max(c.metrics["ndcg_at_k"] for c in choice.candidates)
    assert choice.score == best and choice.method != "popular"
    defaults = [c for c in choice.candidates if c.params == rk.METHODS[c.method].validate({})]
    assert {c.method for c in defaults} == methods  # every method's defaults are scored first
    assert "chose " + choice.method in choice.notes[-1]
    # a user's fixed setting is not searched
    fixed = rk.tune(users, items, w, 400, 120, 10, time=d["time"], methods=["item_knn"], budget=60,
                    params={"item_knn": {"neighbors": 7}})
    assert {c.params["neighbors"] for c in fixed.candidates if c.method == "item_knn"} == {7}
    with pytest.raises(InvalidArgument, match="budget"):
        rk.tune(users, items, w, 400, 120, 10, budget=0)
    assert rk.default_budget(1_000) == 10 and rk.default_budget(100_000) == 30 and rk.default_budget(10 ** 8) == 120


def test_evaluate_and_train_report_tuned_settings(shop):
    con, _ = shop
    out = con.execute("FROM evaluate_recommender('events', 10, methods := ['item_knn', 'ease'], budget := '6s')").df()
    out = out.set_index("method")
    assert list(out.index) == ["popular", "item_knn", "ease"]
    assert out.loc["item_knn", "candidates"] > 1 and "neighbors" in out.loc["item_knn", "params"]
    assert any("item_knn (neighbors=" in n for n in out.loc["item_knn", "notes"])
    assert "budget" in _err(con, "FROM evaluate_recommender('events', 10, budget := 'soon')")
    row = con.execute("""FROM ml_train('tuned', 'events', task := 'recommend',
                         params := {'budget': '6s', 'methods': ['item_knn', 'ease']})""").df().iloc[0]
    assert row["algorithm"] in ("item_knn", "ease", "popular")
    assert any(n.startswith("auto tried") and "chose " + row["algorithm"] in n for n in row["notes"])
    assert sum(n.startswith(("popular", "item_knn", "ease")) for n in row["notes"]) == len(row["candidates"])


def test_exclude_and_candidates_filter_before_ranking(shop):
    con, _ = shop
    con.execute("""CREATE OR REPLACE TABLE out_of_stock AS
                   SELECT sku FROM events WHERE sku IS NOT NULL GROUP BY sku ORDER BY count(*) DESC LIMIT 20""")
    con.execute("""CREATE OR REPLACE TABLE promo AS SELECT DISTINCT sku AS product FROM events
                   WHERE sku IS NOT NULL ORDER BY product LIMIT 60""")
    for method in ("item_knn", "ease", "popular") + (("als",) if HAS_IMPLICIT else ()):
        base = con.execute(f"FROM recommend_items('events', 5, method := '{method}')").df()
        out = con.execute(f"FROM recommend_items('events', 5, method := '{method}', exclude := 'out_of_stock')").df()
        assert out.groupby("user").size().min() == 5 and out["user"].nunique() == base["user"].nunique()
        banned = set(con.execute("SELECT sku FROM out_of_stock").df()["sku"])
        assert not set(out["item"]) & banned and set(base["item"]) & banned
        only = con.execute(f"""FROM recommend_items('events', 5, method := '{method}', candidates := 'promo',
                               exclude := 'out_of_stock')""").df()
        allowed = set(con.execute("SELECT product FROM promo").df()["product"]) - banned
        assert set(only["item"]) <= allowed and only.groupby("user").size().min() == 5
    con.execute("CREATE OR REPLACE TABLE two_cols AS SELECT 1 AS a, 2 AS b")
    assert "argument 'exclude'" in _err(con, "FROM recommend_items('events', 5, exclude := 'two_cols')")


def test_exclude_and_candidates_take_ctes_and_temp_tables_through_the_front_door(shop):
    """Every relation a spec declares as read (RelationName options too) is made readable by the front door."""
    con, _ = shop
    con.execute("""CREATE OR REPLACE TEMP TABLE gone AS
                   SELECT sku FROM events WHERE sku IS NOT NULL GROUP BY sku ORDER BY count(*) DESC LIMIT 20""")
    banned = set(con.execute("SELECT sku FROM gone").df()["sku"])
    out = wml.sql(con, "FROM recommend_items('events', 5, method := 'popular', exclude := 'gone')").df()
    assert not set(out["item"]) & banned and out.groupby("user").size().min() == 5
    only = wml.sql(con, """WITH promo AS (SELECT DISTINCT sku FROM events WHERE sku IS NOT NULL ORDER BY sku LIMIT 30)
                           FROM recommend_items('events', 5, method := 'popular', candidates := 'promo')""").df()
    allowed = set(con.execute("SELECT DISTINCT sku FROM events WHERE sku IS NOT NULL ORDER BY sku LIMIT 30").df()["sku"])
    assert set(only["item"]) <= allowed and only.groupby("user").size().min() == 5


def test_keys_come_back_with_their_source_types(tmp_path):
    con = wml.connect(str(tmp_path / "typed.duckdb"))
    try:
        d = rk.synthetic_interactions(60, 30, 900, seed=2)
        con.execute("""CREATE TABLE ev AS SELECT CAST(u AS BIGINT) + 10000000000 AS user_id, CAST(i AS INTEGER) AS item_id,
                       TIMESTAMP '2024-01-01' + to_seconds(CAST(t AS BIGINT)) AS ts
                       FROM (SELECT unnest($1) AS u, unnest($2) AS i, unnest($3) AS t)""",
                    [d["user"].tolist(), d["item"].tolist(), d["time"].tolist()])
        types = lambda q: [str(t) for t in con.sql(q).types]  # noqa: E731
        assert types("FROM recommend_items('ev', 3, method := 'ease')") == ["BIGINT", "INTEGER", "INTEGER", "DOUBLE"]
        assert types("FROM similar_items('ev', 3)") == ["INTEGER", "INTEGER", "INTEGER", "DOUBLE"]
        con.execute("FROM ml_train('m', 'ev', task := 'recommend', method := 'item_knn')").fetchall()
        assert types("FROM recommend_items('m', 3)") == ["BIGINT", "INTEGER", "INTEGER", "DOUBLE"]
        joined = con.execute("""SELECT count(*) FROM recommend_items('m', 3) r JOIN (SELECT DISTINCT user_id FROM ev) e
                                ON e.user_id = r.user""").fetchone()[0]
        assert joined == 3 * 60
        con.execute("CREATE TABLE sev AS SELECT 'c' || user_id AS customer, CAST(item_id AS DECIMAL(9,2)) AS sku FROM ev")
        assert types("FROM recommend_items('sev', 2, method := 'popular')") == ["VARCHAR", "INTEGER", "DECIMAL(9,2)",
                                                                                 "DOUBLE"]
    finally:
        con.close()
