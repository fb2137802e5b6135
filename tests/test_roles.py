"""Column roles (``tasks.roles``): one line per case, column name or type -> whether it plays the role. These pin
the guesses every function makes when a column is not named."""
from __future__ import annotations

import pyarrow as pa
import pytest

from warehouse_ml.tasks import roles

NAMES = [
    ("ID", "id", True), ("ID", "user_id", True), ("ID", "id_card", True), ("ID", "email", True), ("ID", "paid", False),
    ("ID", "order_id_hash", True), ("ID", "session_uuid", True), ("ID", "idle_minutes", False),
    ("KEY", "customer_id", True), ("KEY", "pk_key", True), ("KEY", "email", False), ("KEY", "uuid_text", True),
    ("KEY", "keyboard", False),
    ("SEQUENCE", "row", True), ("SEQUENCE", "invoice_no", True), ("SEQUENCE", "arrow", False),
    ("ENTITY", "customer", True), ("ENTITY", "patient_number", True), ("ENTITY", "id", True),
    ("ENTITY", "customer_name", False),
    ("USER", "user_id", True), ("USER", "CustomerKey", True), ("USER", "customer_key", True), ("USER", "buyer", True),
    ("USER", "web_visitor_code", True), ("USER", "username", False),
    ("ITEM", "sku", True), ("ITEM", "product_id", True), ("ITEM", "movie", True), ("ITEM", "itemized", False),
    ("PRODUCT", "product_name", True), ("PRODUCT", "sku", True), ("PRODUCT", "movie", False),
    ("SERIES_KEY", "store_id", True), ("SERIES_KEY", "skus", True), ("SERIES_KEY", "units", False),
    ("SERIES_NAME", "series", True), ("SERIES_NAME", "productid", True), ("SERIES_NAME", "order_id", False),
    ("TIME", "ts", True), ("TIME", "created_at", True), ("TIME", "event_date", True), ("TIME", "amount", False),
    ("EVENT", "event_type", True), ("EVENT", "action", True), ("EVENT", "transaction", False),
    ("VARIANT", "variant", True), ("VARIANT", "Group", True), ("VARIANT", "cohort", True), ("VARIANT", "group_id", False),
    ("LABEL", "churned", True), ("LABEL", "is_fraud", True), ("LABEL", "y", True), ("LABEL", "days_to_target", True),
    ("LABEL", "yield", False),
    ("PRE_PERIOD", "pre_revenue", True), ("PRE_PERIOD", "premium", False),
    ("PRICE", "unit_price", True), ("UNITS", "units_sold", True), ("UNITS", "qty", True), ("UNITS", "price", False),
    ("DEMAND", "daily_sales", True), ("DEMAND", "orders", True), ("DEMAND", "order_id", False),
    ("AMOUNT", "refund_amount", True), ("AMOUNT", "clicks", False),
]


@pytest.mark.parametrize("role,name,plays", NAMES)
def test_role_names(role, name, plays):
    assert bool(getattr(roles, role).search(name)) is plays


DATE_TYPES = [("DATE", True), ("TIMESTAMP", True), ("TIMESTAMP WITH TIME ZONE", True), ("TIMESTAMP_NS", True),
              ("timestamp_ms", True), ("TIME", False), ("TIME WITH TIME ZONE", False), ("TIME_NS", False),
              ("VARCHAR", False), ("INTERVAL", False)]


@pytest.mark.parametrize("sql_type,is_date", DATE_TYPES)
def test_date_types(sql_type, is_date):
    assert roles.is_date_type(sql_type) is is_date


IDS = [  # name, type, distinct, non-null -> ID-like
    ("customer_id", pa.int64(), 990, 1000, True), ("customer_id", pa.int64(), 400, 1000, False),
    ("comment", pa.string(), 950, 1000, True), ("city", pa.string(), 40, 1000, False),
    ("row", pa.int64(), 1000, 1000, True), ("visits", pa.int64(), 1000, 1000, False),
    ("id", pa.int64(), 10, 10, True), ("amount", pa.float64(), 10, 10, False),
]


@pytest.mark.parametrize("name,arrow_type,distinct,non_null,id_like", IDS)
def test_looks_like_id(name, arrow_type, distinct, non_null, id_like):
    assert roles.looks_like_id(name, arrow_type, distinct, non_null) is id_like


@pytest.mark.parametrize("name", ["customer_id", "row", "id", "order_no", "visits", "n_orders", "idle_days",
                                  "valid", "key", "keys_pressed", "seq", "sequence_len"])
def test_an_integer_is_id_like_only_by_a_name_id_by_name_allows(name):
    """Featurizer.fit counts an integer column's distinct values only where ``id_by_name`` says its name allows an
    ID: for every other name, no count (not even all-distinct, at any size) may make it ID-like."""
    if not roles.id_by_name(name):
        for distinct, non_null in [(10, 10), (19, 19), (1000, 1000), (999, 1000), (600, 1000)]:
            assert not roles.looks_like_id(name, pa.int64(), distinct, non_null)
    else:
        assert roles.looks_like_id(name, pa.int64(), 1000, 1000)


def test_roles_module_is_pure():
    """Kernels and a second engine use the roles without DuckDB."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(roles))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "duckdb" not in imported
