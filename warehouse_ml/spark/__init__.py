"""warehouse-ml on Apache Spark: the same SQL functions, kernels and stored models on a SparkSession.

    import warehouse_ml.spark as wml_spark
    wml_spark.install(spark, models="shop.duckdb")   # or models="exported/", written by SQL ml_export
    spark.sql("SELECT user_id, ml_predict('churn', struct(*)) AS p FROM users")
    spark.sql("SELECT * FROM forecast_demand(TABLE(sales) PARTITION BY (item), 28, 'ets')")
    wml_spark.ab_test(events_df, metric='converted', experiment='experiment_id')   # DataFrame functions

Models are trained in DuckDB, or from Spark with ``ml_train(df, 'churn', label='churned', into='models/')`` (DuckDB's
training on a stratified sample collected to the driver, its size stated); their active versions travel as the same safe artifacts (skops / npz bytes,
loaded through the allowlist on each executor), never as pickles. Needs ``pip install 'warehouse-ml[spark]'``
(pyspark 4.1 or later, Java 17) and Spark's Python workers on the same environment (``PYSPARK_PYTHON``).
"""
from __future__ import annotations

from ..exchange import ModelBundle, export_models, import_models
from .analysis import ab_test, optimal_price, price_elasticity
from .forecast import FUNCTIONS as SERIES_FUNCTIONS, backtest_demand, detect_anomalies, explain_forecast, \
    forecast_demand, reorder_plan, series_udtf
from .prep import user_features
from .recommend import evaluate_recommender, recommend_items, recommender_udtfs, similar_items
from .scoring import scoring_udfs
from .training import ml_train, stratified_sample

__all__ = ["install", "export_models", "import_models", "ModelBundle", "forecast_demand", "backtest_demand",
           "explain_forecast", "detect_anomalies", "reorder_plan", "ab_test", "price_elasticity", "optimal_price",
           "user_features", "recommend_items", "similar_items", "evaluate_recommender", "ml_train",
           "stratified_sample"]


def install(spark, models=None, only: list[str] | None = None) -> list[str]:
    """Register warehouse-ml's functions on ``spark``; returns their names.

    ``models``: a DuckDB database file or connection, or a folder / Parquet file from ``export_models``; the
    active versions (of ``only``, default all) are read once here and broadcast to the executors. Without it
    only the table functions (forecast_demand, backtest_demand, explain_forecast, detect_anomalies, reorder_plan,
    recommend_items, similar_items) are registered."""
    names = []
    if models is not None:
        bundle = ModelBundle.open(models, only)
        broadcast = spark.sparkContext.broadcast(bundle.records)
        for name, udf in scoring_udfs(broadcast).items():
            spark.udf.register(name, udf)
            names.append(name)
    table_functions = {name: series_udtf(fn) for name, fn in SERIES_FUNCTIONS.items()} | recommender_udtfs()
    for name, udtf in table_functions.items():
        spark.udtf.register(name, udtf)
        names.append(name)
    return names
