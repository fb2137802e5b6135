"""segment_users / segment_profiles / ml_predict on a segments model: recovery of known groups, ID columns left
out, stored model assigns new users identically, profiles in words, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import adjusted_rand_score

import warehouse_ml as wml
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.errors import InvalidArgument
from warehouse_ml.functions.segment import predict_segment
from warehouse_ml.store import dumps_arrays
from warehouse_ml.tasks import segment as sg


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    con = wml.connect(str(tmp_path_factory.mktemp("seg") / "seg.duckdb"))
    data, group = sg.simulate_users(1500, seed=4)
    uf = pd.DataFrame(data)
    uf["region"] = np.where(group == 0, "north", "south")  # text: not a feature
    con.execute("CREATE TABLE uf AS SELECT * FROM uf")
    seg = con.sql("FROM segment_users('uf', k := 'auto')").df()
    yield con, group, seg
    con.close()


def test_auto_k_recovers_the_simulated_groups(env):
    con, group, seg = env
    assert len(seg) == 1500 and list(seg.columns) == ["user", "segment", "distance"]
    assert seg.segment.nunique() == 3
    assert seg.user.tolist() == list(range(1, 1501))  # user_id is the user, not a feature
    utype = con.execute("SELECT typeof(user_id) FROM uf LIMIT 1").fetchall()[0][0]
    assert [str(t) for t in con.sql("FROM segment_users('uf', k := 3, model := 'typed')").types][0] == utype
    assert adjusted_rand_score(group, seg.segment) > 0.95
    assert (seg.distance >= 0).all()
    sizes = seg.segment.value_counts().sort_index().tolist()
    assert sizes == sorted(sizes, reverse=True)  # segment 1 is the largest


def test_model_is_stored_and_ml_predict_assigns_like_segment_users(env):
    con, _, seg = env
    m = con.sql("SELECT task, algorithm, features, metrics FROM ml_models() WHERE model = 'segments' AND is_active").df()
    assert m.task[0] == "segment" and m.algorithm[0] == "kmeans"
    assert sorted(m.features[0]) == ["avg_order_value", "discount_share", "frequency", "recency_days"]
    assert m.metrics[0]["k"] == 3.0
    pred = con.sql("SELECT ml_predict('segments', u) AS s, ml_predict_label('segments', u) AS l FROM uf u ORDER BY user_id").df()
    assert (pred.s.astype(int).to_numpy() == seg.segment.to_numpy()).all()
    assert (pred.l == seg.segment).all()  # INTEGER segment numbers


def test_predictor_directly_matches_by_name_and_handles_nulls(env):
    con, _, seg = env
    sm = runtime_for(con).store.load("segments")
    # other column order, an extra text column, upper-case names: features are matched by name
    rows = con.sql("SELECT discount_share, recency_days AS RECENCY_DAYS, avg_order_value, frequency, region "
                   "FROM uf ORDER BY user_id LIMIT 50").to_arrow_table()
    struct = pa.StructArray.from_arrays([c.combine_chunks() for c in rows.columns], names=rows.column_names)
    out = predict_segment(sm, struct, "value")
    assert out.type == pa.float64()
    assert np.array_equal(out.to_numpy().astype(int), seg.segment.to_numpy()[:50])
    with_null = pa.StructArray.from_arrays([c.combine_chunks() for c in rows.columns], names=rows.column_names,
                                           mask=pa.array([True] + [False] * 49))
    assert predict_segment(sm, with_null, "value")[0].as_py() is None
    missing = pa.StructArray.from_arrays([rows.column("frequency").combine_chunks()], names=["frequency"])
    with pytest.raises(InvalidArgument, match="argument 'row'.*'recency_days'"):
        predict_segment(sm, missing, "value")


def test_profiles_describe_segments_in_words(env):
    con, group, seg = env
    prof = con.sql("FROM segment_profiles('uf')").df().set_index("segment")
    assert prof.n.sum() == 1500 and prof.share.sum() == pytest.approx(1.0)
    assert (prof.model == "segments").all()
    # simulated group 2 spends most per order: its segment's description says so
    big_spenders = seg.segment[group == 2].mode()[0]
    assert "very high avg order value" in prof.loc[big_spenders].description
    frequent = seg.segment[group == 1].mode()[0]
    assert "high frequency" in prof.loc[frequent].description and "low recency days" in prof.loc[frequent].description
    assert prof.loc[big_spenders].feature_means["avg_order_value"] > 300


def test_id_like_and_text_columns_reported_and_fixed_k(tmp_path):
    con = wml.connect(str(tmp_path / "s.duckdb"))
    data, _ = sg.simulate_users(300, seed=1)
    df = pd.DataFrame(data).rename(columns={"user_id": "customer"})
    df["order_id"] = np.arange(1000, 1300)
    df["plan"] = "basic"
    con.execute("CREATE TABLE t AS SELECT * FROM df")
    seg = con.sql("FROM segment_users('t', k := 4, model := 'seg4', \"user\" := 'customer')").df()
    assert seg.segment.nunique() == 4
    prof = con.sql("FROM segment_profiles('t', model := 'seg4')").df()
    notes = prof.notes[0]
    assert len(prof) == 4 and "version 1" in notes
    refit = con.sql("FROM segment_profiles('t', model := 'seg4', k := 2)").df()  # k given: refits, new version
    assert len(refit) == 2 and "ID-like column 'order_id' excluded" in refit.notes[0]
    assert "'plan'" in refit.notes[0]
    tr = con.sql("FROM ml_train('seg_t', 't', task := 'segment', k := 2)").df()
    assert tr.task[0] == "segment" and tr.n_train[0] == 300


@pytest.mark.parametrize("sql, argument", [
    ("FROM segment_users('t', k := 1)", "k"),
    ("FROM segment_users('t', k := 'many')", "k"),
    ("FROM segment_users('words')", "relation"),
    ("FROM segment_users('t', features := ['name'])", "features"),
    ("FROM segment_profiles('t', model := 'churny')", "model"),
])
def test_bad_input(tmp_path, sql, argument):
    con = wml.connect(str(tmp_path / "b.duckdb"))
    con.execute("CREATE TABLE t AS SELECT i AS user_id, i % 7 AS a, (i * 13) % 11 AS b, 'x' || i AS name FROM range(40) r(i)")
    con.execute("CREATE TABLE words AS SELECT 'a' AS name, 'b' AS city")
    if "churny" in sql:  # a model of another task under that name
        fmt, blob = dumps_arrays({"w": np.zeros(2)})
        runtime_for(con).store.save("churny", task="classification", algorithm="logistic", fmt=fmt, artifact=blob)
    with pytest.raises(Exception) as err:
        con.sql(sql).fetchall()
    assert f"argument '{argument}'" in str(err.value)
