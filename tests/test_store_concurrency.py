"""The store under concurrent writers: distinct versions, one total order of deployments, clear failures."""
from __future__ import annotations

import threading
from datetime import datetime

import duckdb
import pytest

import warehouse_ml as wml
from warehouse_ml.binding.registry import runtime_for
from warehouse_ml.errors import ConcurrentWrite
from warehouse_ml.store import WRITE_ATTEMPTS, dumps_arrays


def _run_together(con, statements: list[str]) -> tuple[list, list[str]]:
    """Each statement on its own cursor in its own thread, all released at once; (results, errors)."""
    results, errors = [None] * len(statements), []
    barrier = threading.Barrier(len(statements))

    def work(i: int, sql: str) -> None:
        cur = wml.install(con.cursor())
        barrier.wait()
        try:
            results[i] = cur.execute(sql).fetchall()
        except duckdb.Error as e:
            errors.append(str(e))
        finally:
            cur.close()

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(statements)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def test_concurrent_trainings_and_deploys_get_distinct_versions_and_one_order(con):
    con.execute("CREATE TABLE t AS SELECT range AS x, (range % 2) AS y, random() AS z FROM range(300)")
    con.execute("FROM ml_train('race', 't', label := 'y', algorithm := 'logistic')").fetchall()
    trains = ["SELECT version FROM ml_train('race', 't', label := 'y', algorithm := 'logistic')"] * 4
    deploys = ["SELECT version FROM ml_deploy('race', 1)"] * 8
    results, errors = _run_together(con, trains + deploys)
    assert errors == []
    new_versions = sorted(r[0][0] for r in results[:4])
    assert new_versions == [2, 3, 4, 5]
    assert [r[0] for r in con.execute("SELECT version FROM wml.model_versions ORDER BY 1").fetchall()] == [1, 2, 3, 4, 5]
    log = con.execute("SELECT seq, version, action FROM wml.deployments ORDER BY seq").fetchall()
    assert [s for s, _, _ in log] == list(range(1, 14))  # 1 + 4 trainings + 8 deploys, each its own number
    assert sorted(a for _, _, a in log).count("deploy") == 8
    active = con.execute("SELECT version FROM ml_models() WHERE is_active").fetchall()
    assert active == [(log[-1][1],)]  # the last entry of the log decides, with no ties


def test_concurrent_rollbacks_step_back_one_at_a_time(con):
    store = runtime_for(con).store
    fmt, blob = dumps_arrays({"w": [1.0]})
    for _ in range(4):
        store.save("m", task="classification", algorithm="logistic", fmt=fmt, artifact=blob)
    _, errors = _run_together(con, ["FROM ml_rollback('m')"] * 3)
    assert errors == []
    assert store.active_version("m") == 1


def test_a_write_that_loses_a_race_to_an_outside_writer_retries_with_fresh_numbers(con):
    """A writer outside this process's lock (raw SQL on another cursor) commits the sequence number a store
    write had already read: the store's commit conflicts, and the retry takes the next free number."""
    store = runtime_for(con).store
    fmt, blob = dumps_arrays({"w": [1.0]})
    store.save("m", task="classification", algorithm="logistic", fmt=fmt, artifact=blob)
    attempts = []

    def deploy_after_a_rival(cur):
        attempts.append(cur.execute("SELECT max(seq) FROM wml.deployments").fetchone()[0])  # snapshot taken
        if len(attempts) == 1:
            rival = con.cursor()
            rival.execute("INSERT INTO wml.deployments VALUES (2, 'm', 1, 'deploy', now())")  # commits first
            rival.close()
        store._log(cur, "m", 1, "deploy", datetime.now())

    store._write(deploy_after_a_rival, "a deploy of 'm'")
    assert attempts == [1, 2]
    assert con.execute("SELECT seq FROM wml.deployments ORDER BY seq").fetchall() == [(1,), (2,), (3,)]


def test_a_write_that_keeps_losing_says_so_and_writes_nothing(con):
    store = runtime_for(con).store
    fmt, blob = dumps_arrays({"w": [1.0]})
    store.save("m", task="classification", algorithm="logistic", fmt=fmt, artifact=blob)

    def always_beaten(cur):
        seq = cur.execute("SELECT max(seq) + 1 FROM wml.deployments").fetchone()[0]
        rival = con.cursor()
        rival.execute("INSERT INTO wml.deployments VALUES ($1, 'm', 1, 'deploy', now())", [seq])
        rival.close()
        store._log(cur, "m", 1, "deploy", datetime.now())

    with pytest.raises(ConcurrentWrite, match="a deploy of 'm' could not be written.*Nothing was written"):
        store._write(always_beaten, "a deploy of 'm'")
    assert con.execute("SELECT count(*) FROM wml.deployments WHERE action = 'deploy'").fetchone() == (WRITE_ATTEMPTS,)


def test_two_connections_to_one_file_spelled_differently_share_one_order(db_path, monkeypatch):
    import os

    monkeypatch.chdir(os.path.dirname(db_path))
    first, second = wml.connect(os.path.basename(db_path)), wml.connect(db_path)
    first.execute("CREATE TABLE t AS SELECT range AS x, (range % 2) AS y FROM range(200)")
    versions, errors = [], []

    def train(con):
        cur = wml.install(con.cursor())
        try:
            versions.append(cur.execute("SELECT version FROM ml_train('m', 't', label := 'y', "
                                        "algorithm := 'logistic')").fetchall()[0][0])
        except duckdb.Error as e:
            errors.append(str(e))

    threads = [threading.Thread(target=train, args=(c,)) for c in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and sorted(versions) == [1, 2, 3, 4]
    first.close()
    second.close()
