"""Function specs: constraints, option parsing, generated macros, and the lists and README table derived from them."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse_ml.binding import registry
from warehouse_ml.function_table import readme_with_function_table
from warehouse_ml.binding.spec import (
    Arg, Boolean, FunctionSpec, Identifier, Identifiers, Interval, OneOf, Option, StrOptions, Struct,
    macro_sql, specs,
)
from warehouse_ml.errors import InvalidArgument

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("constraint, value, expected", [
    (Interval(int, 2, 50), 8, 8),
    (Interval(int, 2, 50), 8.0, 8),
    (Interval(float, 0, 1, closed="neither"), 0.05, 0.05),
    (Interval(float, 0, None, closed="neither"), 3, 3.0),
    (StrOptions({"holm", "bh", "none"}), "HOLM", "holm"),
    (Identifier(), "user_id", "user_id"),
    (Identifiers(), "region", ["region"]),
    (Identifiers(), ["a", "b"], ["a", "b"]),
    (Boolean(), False, False),
    (Struct(), [{"key": "a", "value": 1}], {"a": 1}),
    (OneOf(StrOptions({"auto"}), Interval(int, 2, 50)), "Auto", "auto"),
    (OneOf(StrOptions({"auto"}), Interval(int, 2, 50)), 4, 4),
])
def test_constraints_accept_and_normalise(constraint, value, expected):
    assert constraint.check(value) == expected
    assert type(constraint.check(value)) is type(expected)


@pytest.mark.parametrize("constraint, value, problem", [
    (Interval(int, 2, 50), 1, "must be a whole number in [2, 50], got 1"),
    (Interval(int, 2, 50), 2.5, "must be a whole number in [2, 50], got 2.5"),
    (Interval(int, 2, 50), True, "must be a whole number in [2, 50], got True"),
    (Interval(float, 0, 1, closed="neither"), 1, "must be a number in (0, 1), got 1.0"),
    (Interval(float, 0, None, closed="neither"), float("nan"), "must be a number > 0, got nan"),
    (StrOptions({"holm", "bh"}), "bonferroni", "is 'bonferroni', not one of 'bh', 'holm'"),
    (Identifier(), 3, "must be a name given as a string, e.g. 'user_id', got 3"),
    (Identifiers(), [], "must be a list of names, e.g. ['a', 'b'], got []"),
    (Boolean(), "yes", "must be true or false, got 'yes'"),
    (Struct(), 3, "must be a struct, e.g. {'name': value}, got 3"),
])
def test_constraints_refuse_with_the_problem(constraint, value, problem):
    from warehouse_ml.binding.spec import Invalid

    with pytest.raises(Invalid) as e:
        constraint.check(value)
    assert str(e.value) == problem


DEMO = FunctionSpec(
    name="demo_fn", doc="A demo.", kind="table", returns="STRUCT(x INTEGER)", udf="wml_demo_fn",
    args=(Arg("relation"), Arg("k", "BIGINT", default=10)),
    options=(Option("alpha", Interval(float, 0, 1, closed="neither"), 0.05),
             Option("method", StrOptions({"auto", "fast"}), "auto"),
             Option("window", Interval(int, 1, None), None, fix="Pass e.g. \"window\" := 7")))


def test_options_are_parsed_once_with_defaults_and_errors_name_argument_problem_fix():
    assert DEMO.parse_options({"alpha": 0.1, "method": None}) == {"alpha": 0.1, "method": "auto", "window": None}
    with pytest.raises(InvalidArgument, match=r"argument 'alpah': is not an option of demo_fn\. Use: alpha, method, window"):
        DEMO.parse_options({"alpah": 0.1})
    with pytest.raises(InvalidArgument, match=r"argument 'alpha': must be a number in \(0, 1\), got 2.0\. Pass e.g. alpha := 0.05"):
        DEMO.parse_options({"alpha": 2})
    with pytest.raises(InvalidArgument, match=r"argument 'window': .*got 0\. Pass e.g. \"window\" := 7"):
        DEMO.parse_options({"window": 0})


def test_generated_macro_has_sql_defaults_and_one_json_object():
    text = macro_sql(DEMO)
    assert text.startswith("-- A demo.\nCREATE OR REPLACE TEMP MACRO demo_fn(")
    assert '"relation", "k" := 10, "alpha" := 0.05, "method" := \'auto\', "window" := NULL) AS TABLE' in text
    assert ("SELECT unnest(wml_demo_fn(\"relation\", \"k\", json_object('alpha', \"alpha\", 'method', \"method\", "
            "'window', \"window\")::VARCHAR), recursive := true)") in text
    con = duckdb.connect()
    con.execute(text.replace("wml_demo_fn(", "list_value(").replace(", recursive := true", ""))  # DuckDB parses it


def test_every_public_function_has_a_macro_that_duckdb_creates_and_lists(con):
    made = {r[0] for r in con.execute("SELECT function_name FROM duckdb_functions() WHERE function_type LIKE '%macro'").fetchall()}
    public = [s for s in specs() if s.public]
    assert len(public) >= 51
    for s in public:
        assert s.name in made, s.name
        assert s.doc and s.doc.endswith("."), f"{s.name}: the one-line doc is a sentence"


def test_macro_parameters_are_the_spec_arguments_and_options(con):
    params = {r[0]: r[1] for r in con.execute(
        "SELECT function_name, parameters FROM duckdb_functions() WHERE function_type LIKE '%macro'").fetchall()}
    for s in specs():
        if s.public:
            assert params[s.name] == [a.name for a in s.args] + s.option_names, s.name


def test_a_kernel_that_does_not_take_an_option_is_refused_at_declaration():
    from warehouse_ml.binding.spec import declare

    def kernel(ctx, relation, k, *, alpha, method):
        return []

    with pytest.raises(TypeError, match=r"does not take the options \['window'\]"):
        declare(FunctionSpec(**{**DEMO.__dict__, "name": "demo_bad", "kernel": kernel}))


def test_writing_and_row_function_lists_come_from_the_specs():
    writing = registry.writing_functions()
    for s in specs():
        assert (s.name in writing) == s.writes, s.name
    assert {s.name for s in specs() if s.row_input} == set(registry.row_functions())


def test_relations_the_front_door_makes_readable_come_from_the_specs():
    from warehouse_ml.binding.spec import relation_readers

    readers = relation_readers()
    assert readers["forecast_demand"] == (["relation", "horizon"], frozenset({"relation", "future", "events"}))
    assert readers["recommend_items"][1] == {"relation", "for_users", "exclude", "candidates"}
    assert readers["user_features"][1] == {"orders"} and "ml_train" in readers
    assert "dp_budget" not in readers  # names a ledger entry: a copy would spend another relation's budget


def test_sql_bodies_are_used_by_a_spec():
    """Files left in sql/ are macro bodies a spec reads: none is orphaned."""
    used = {s.name for s in specs()}
    for fname, _ in registry.sql_files():
        assert fname.removesuffix(".sql") in used, fname


def test_readme_function_table_matches_the_specs():
    """Regenerate with: python -m warehouse_ml.function_table README.md"""
    text = README.read_text(encoding="utf-8")
    assert readme_with_function_table(text) == text, \
        "README.md's function table differs from the specs: run python -m warehouse_ml.function_table README.md"
