"""An unaliased prediction column is named after the function, whatever algorithm the active model uses."""
from __future__ import annotations

import pytest

import warehouse_ml as wml

from .conftest import churn_frame

QUERY = ("SELECT user_id, predict_churn(*), ml_predict('churn', *), ml_predict_label('churn', *), "
         "predict_churn(*) > 0.5, predict_churn(*) AS p FROM uf ORDER BY user_id LIMIT 3")


@pytest.mark.parametrize("algorithm", ["logistic", "gbm"])
def test_front_door_names_prediction_columns_after_the_function(con, algorithm):
    df = churn_frame(300)
    con.execute("CREATE TABLE uf AS FROM df")
    con.execute(f"FROM train_churn('uf', algorithm := '{algorithm}')").fetchall()
    names = [d[0] for d in wml.sql(con, QUERY).description]
    assert names == ["user_id", "predict_churn", "ml_predict", "ml_predict_label", "predict_churn(*) > 0.5", "p"]
    # the native spelling is named by DuckDB after the call as written, which does not depend on the model either
    native = con.execute("SELECT predict_churn(u), ml_predict('churn', u) FROM uf u LIMIT 1").description
    assert [d[0] for d in native] == ["predict_churn(u)", "ml_predict('churn', u)"]
    assert [d[0] for d in wml.sql(con, "SELECT predict_churn(u) FROM uf u LIMIT 1").description] == ["predict_churn"]
