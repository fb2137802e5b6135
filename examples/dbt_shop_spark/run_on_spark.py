"""Run this dbt project on Spark in this process: `python run_on_spark.py shop.duckdb [dbt arguments]`.

dbt-spark's `session` method runs on the SparkSession of the process that starts dbt, so this launcher makes
one, installs warehouse-ml's functions on it (with the models of the DuckDB file), copies the shop's source
tables into Spark database `shop` (stand-ins for lakehouse tables), then invokes dbt. That launcher is the one
change the project needs besides Spark's spelling of the calls: `dbt run` on its own would start a session
without warehouse-ml's functions.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb

import warehouse_ml.spark as wml_spark

PROJECT = Path(__file__).resolve().parent
SOURCES = ("daily_sales", "user_features")


def load_sources(spark, shop_db: str) -> None:
    """The shop's source tables, read from the DuckDB file into Spark tables shop.<name>."""
    spark.sql("CREATE DATABASE IF NOT EXISTS shop")
    con = duckdb.connect(shop_db, read_only=True)
    try:
        for name in SOURCES:
            table = con.sql(f'SELECT * FROM main."{name}"').to_arrow_table()
            spark.createDataFrame(table).write.mode("overwrite").saveAsTable(f"shop.{name}")
    finally:
        con.close()


def run(spark, shop_db: str, args: list[str] = ("run",), project: Path = PROJECT):
    """Install the functions, load the sources and run dbt with ``args``; returns dbt's result."""
    from dbt.cli.main import dbtRunner

    wml_spark.install(spark, models=shop_db, only=["churn"])
    load_sources(spark, shop_db)
    return dbtRunner().invoke([*args, "--project-dir", str(project), "--profiles-dir", str(project)])


if __name__ == "__main__":
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = SparkSession.builder.master("local[*]").config("spark.sql.session.timeZone", "UTC").getOrCreate()
    result = run(session, sys.argv[1], sys.argv[2:] or ["run"])
    sys.exit(0 if result.success else 1)
