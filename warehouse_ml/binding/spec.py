"""One declaration per SQL function: its name, arguments, typed options, result and body.

A ``FunctionSpec`` is the single source from which come the DuckDB registration of its UDF
(``binding.registry``), the TEMP macro users call (signature with SQL-literal defaults, the
``json_object('opt', opt, ...)`` call), the option parsing and validation done once before the kernel runs, the
lists other layers need (functions that change the model store, functions that take a whole row) and the README's
function table. Another engine registers the same specs: it needs ``name``, ``args``, ``parse_options``,
``kernel`` and ``returns``, nothing DuckDB-specific.

Options are checked by small constraint objects in the style of scikit-learn's ``Interval`` and ``StrOptions``;
a failed check raises ``InvalidArgument(option, problem, fix)`` like every hand-written check does.
"""
from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InvalidArgument


class Invalid(ValueError):
    """A constraint's verdict on a value: the problem, without the argument's name (added by the option)."""


def _shown(value) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


# -- constraints ---------------------------------------------------------------------------------------------------
class Constraint:
    """Checks one option value and returns it in the form the kernel takes (e.g. lower-cased, a list)."""

    def check(self, value):  # pragma: no cover - every constraint overrides it
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``kind`` (``int`` or ``float``) between ``low`` and ``high`` (``None``: unbounded); ``closed``
    is 'both', 'left', 'right' or 'neither'. Booleans are refused; a whole float passes as an ``int``."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        if self.kind is int:
            if value != int(value):
                raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
            value = int(value)
        else:
            value = float(value)
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        if not (low_ok and high_ok):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return value

    def describe(self) -> str:
        noun = "a whole number" if self.kind is int else "a number"
        if self.low is None and self.high is None:
            return noun
        if self.high is None:
            return f"{noun} {'>=' if self.closed in ('both', 'left') else '>'} {_num(self.low)}"
        if self.low is None:
            return f"{noun} {'<=' if self.closed in ('both', 'right') else '<'} {_num(self.high)}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"{noun} in {left}{_num(self.low)}, {_num(self.high)}{right}"


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


@dataclass(frozen=True)
class StrOptions(Constraint):
    """One of a set of words, compared case-insensitively; the kernel gets it lower-cased. ``what`` names the kind
    of word in the problem ("unknown statistic 'x'")."""

    options: frozenset[str]
    what: str | None = None

    def __init__(self, options: Iterable[str], what: str | None = None):
        object.__setattr__(self, "options", frozenset(o.lower() for o in options))
        object.__setattr__(self, "what", what)

    def check(self, value):
        if not isinstance(value, str) or value.lower() not in self.options:
            raise Invalid(f"unknown {self.what} {value!r}" if self.what else
                          f"is {_shown(value)}, not one of {self.describe()}")
        return value.lower()

    def describe(self) -> str:
        return ", ".join(f"'{o}'" for o in sorted(self.options))


@dataclass(frozen=True)
class Text(Constraint):
    """Any text (a name, a code, a SQL expression); ``nonempty`` refuses '' and blanks."""

    nonempty: bool = False

    def check(self, value):
        if not isinstance(value, str) or (self.nonempty and not value.strip()):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return value

    def describe(self) -> str:
        return "non-empty text" if self.nonempty else "text"


@dataclass(frozen=True)
class Identifier(Text):
    """The name of a relation or column as a string; resolved against the catalog later, never pasted."""

    nonempty: bool = True

    def describe(self) -> str:
        return "a name given as a string, e.g. 'user_id'"


@dataclass(frozen=True)
class RelationName(Identifier):
    """The name of a relation (table, view, CTE, frame) or a query the function reads; the front door makes one
    a second cursor cannot see readable (``binding.inputs``)."""

    def describe(self) -> str:
        return "a table or view name given as a string, e.g. 'sales'"


@dataclass(frozen=True)
class Identifiers(Constraint):
    """A list of names; one name alone is taken as a list of one (unless ``one_alone`` is False: a SQL body
    that casts it to VARCHAR[] needs a list). ``nonempty`` refuses []."""

    nonempty: bool = True
    one_alone: bool = True

    def check(self, value):
        value = [value] if isinstance(value, str) and self.one_alone else value
        if (not isinstance(value, list) or (self.nonempty and not value)
                or not all(isinstance(v, str) and v.strip() for v in value)):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return value

    def describe(self) -> str:
        return "a list of names, e.g. ['a', 'b']"


@dataclass(frozen=True)
class Boolean(Constraint):
    def check(self, value):
        if not isinstance(value, bool):
            raise Invalid(f"must be true or false, got {_shown(value)}")
        return value

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Struct(Constraint):
    """A struct or map (a JSON object); a DuckDB MAP that arrives as [{'key': .., 'value': ..}] becomes a dict."""

    def check(self, value):
        if isinstance(value, list) and all(isinstance(e, dict) and set(e) == {"key", "value"} for e in value):
            value = {e["key"]: e["value"] for e in value}
        if not isinstance(value, dict):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return value

    def describe(self) -> str:
        return "a struct, e.g. {'name': value}"


@dataclass(frozen=True)
class Anything(Constraint):
    """Left to the kernel, which checks it against the data (e.g. a date, a value of the variant column)."""

    what: str = "a value"

    def check(self, value):
        return value

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class OneOf(Constraint):
    """The first constraint that accepts the value wins (e.g. k := 'auto' or a whole number)."""

    choices: tuple[Constraint, ...]

    def __init__(self, *choices: Constraint):
        object.__setattr__(self, "choices", tuple(choices))

    def check(self, value):
        for c in self.choices:
            try:
                return c.check(value)
            except Invalid:
                continue
        raise Invalid(f"must be {self.describe()}, got {_shown(value)}")

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.choices)


# -- declarations --------------------------------------------------------------------------------------------------
REQUIRED = object()  # an argument without a default: positional in SQL


@dataclass(frozen=True)
class Arg:
    """A positional argument of the UDF. With a ``default`` it is a named parameter of the macro (passed on
    positionally); ``cast`` wraps it in ``CAST(arg AS type)`` so any number reaches e.g. a DOUBLE parameter.
    ``sql_type`` 'ANY' takes a whole row (a struct of any shape). ``reads``: it names a relation the function
    reads, so the front door makes a CTE, TEMP table or frame passed there readable (``binding.inputs``)."""

    name: str
    sql_type: str = "VARCHAR"
    default: Any = REQUIRED
    cast: bool = False
    reads: bool = False


def RelationArg(name: str = "relation", **kw) -> Arg:
    """A positional argument naming a relation the function reads."""
    return Arg(name, reads=True, **kw)


@dataclass(frozen=True)
class Option:
    """A named option, handed to the UDF inside one JSON object and to the kernel as a keyword argument.
    ``fix`` replaces the generic 'Pass e.g. ...' advice of a failed check."""

    name: str
    constraint: Constraint = Anything()
    default: Any = None
    fix: str | None = None
    doc: str = ""

    def parse(self, value):
        try:
            return self.constraint.check(value)
        except Invalid as e:
            example = self.default if self.default is not None else _example(self.constraint)
            fix = self.fix or (f"Pass e.g. {self.name} := {sql_literal(example)}" if example is not None
                               else f"Pass {self.constraint.describe()}")
            raise InvalidArgument(self.name, str(e), fix) from None


def _example(c: Constraint):
    if isinstance(c, Interval):
        return c.low if c.low is not None and c.closed in ("both", "left") else None
    if isinstance(c, StrOptions):
        return sorted(c.options)[0]
    if isinstance(c, Boolean):
        return True
    if isinstance(c, OneOf):
        return next((e for e in map(_example, c.choices) if e is not None), None)
    return None


@dataclass(frozen=True)
class FunctionSpec:
    """The declaration of one SQL function (or, with ``public=False``, of an internal UDF a macro calls).

    ``kind``: 'table' (the UDF returns a whole result as ``returns[]``, unnested by the macro), 'scalar' (column-
    wise over Arrow arrays), or 'macro' (pure SQL: no UDF of its own, ``body`` says what it does).
    ``body``: the macro body when it is not the plain call; ``{call}`` stands for the generated UDF call and
    ``{options}`` for the ``json_object(...)`` of the options. ``key_types``: for a table function whose keys
    come back with their source types, ``key_types(ctx, *args, **options) -> {column: sql_type}``; the macro then
    runs ``FROM query(<udf>_sql(...))`` over SQL text written at bind time (``binding.keys``)."""

    name: str
    doc: str
    kind: str
    returns: str = ""
    args: tuple[Arg, ...] = ()
    options: tuple[Option, ...] = ()
    kernel: Callable | None = None
    writes: bool = False
    row_input: bool = False
    body: str | None = None
    udf: str | None = None
    key_types: Callable | None = None
    side_effects: bool = False
    public: bool = True
    module: str = ""

    @property
    def option_names(self) -> list[str]:
        return [o.name for o in self.options]

    @property
    def relation_parameters(self) -> frozenset[str]:
        """The parameters naming a relation the function reads: ``Relation`` arguments, ``RelationName`` options."""
        return frozenset([a.name for a in self.args if a.reads]
                         + [o.name for o in self.options if isinstance(o.constraint, RelationName)])

    def parse_options(self, given: Mapping | None) -> dict:
        """Every option of the function, validated, with its default where not given (NULL means not given)."""
        return parse_options(self.options, given, self.name)

    def udf_params(self) -> list[str] | None:
        """The UDF's SQL parameter types; None registers varargs of ANY (a row of any shape)."""
        if any(a.sql_type == "ANY" for a in self.args):
            return None
        return [a.sql_type for a in self.args] + (["VARCHAR"] if self.options else [])


def parse_options(options: Iterable[Option], given: Mapping | None, function: str) -> dict:
    """``given`` checked against ``options``: an unknown name or a bad value raises InvalidArgument naming it;
    every option comes back, with its default where not given (NULL means not given)."""
    options = list(options)
    names = [o.name for o in options]
    given = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InvalidArgument(unknown[0], f"is not an option of {function}", f"Use: {', '.join(sorted(names))}")
    return {o.name: (o.parse(given[o.name]) if o.name in given else o.default) for o in options}


_SPECS: dict[str, FunctionSpec] = {}


def _check_kernel(spec: FunctionSpec) -> None:
    """The kernel must take each option as a keyword (or **options): a renamed option fails at import."""
    params = inspect.signature(spec.kernel).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [o for o in spec.option_names if o not in params]
    if missing:
        raise TypeError(f"kernel of {spec.name} does not take the options {missing}")


def declare(spec: FunctionSpec) -> FunctionSpec:
    if spec.kind not in ("table", "scalar", "macro"):
        raise ValueError(f"{spec.name}: kind must be table, scalar or macro")
    if spec.kind == "scalar" and spec.options:
        raise ValueError(f"{spec.name}: a scalar function takes arguments (with defaults), not options")
    if spec.kind != "macro" and spec.udf is None:
        spec = replace(spec, udf="wml_" + spec.name.removeprefix("ml_").removeprefix("wml_"))
    if spec.kernel is not None and spec.kind != "scalar":
        _check_kernel(spec)
    _SPECS[spec.name] = spec
    return spec


def sql_function(name: str, doc: str, *, kind: str = "table", returns: str = "", args: Iterable[Arg] = (),
                 options: Iterable[Option] = (), writes: bool = False, row_input: bool = False, body: str | None = None,
                 udf: str | None = None, key_types: Callable | None = None, side_effects: bool = False,
                 public: bool = True):
    """Decorator form of ``declare`` for a function with a kernel: ``kernel(ctx, *args, **options)`` for a table
    function (returns ``pa.Table`` or ``list[dict]``), ``kernel(ctx, *arrays) -> pa.Array`` for a scalar one."""

    def wrap(kernel):
        declare(FunctionSpec(name=name, doc=doc, kind=kind, returns=returns, args=tuple(args), options=tuple(options),
                             kernel=kernel, writes=writes, row_input=row_input, body=body, udf=udf,
                             key_types=key_types, side_effects=side_effects, public=public,
                             module=kernel.__module__.rsplit(".", 1)[-1]))
        return kernel

    return wrap


def sql_macro(name: str, doc: str, body: str, *, args: Iterable[Arg] = (), options: Iterable[Option] = (),
              writes: bool = False, row_input: bool = False, module: str = "") -> FunctionSpec:
    """A function that is pure SQL over other functions (e.g. train_churn over ml_train)."""
    return declare(FunctionSpec(name=name, doc=doc, kind="macro", args=tuple(args), options=tuple(options),
                                writes=writes, row_input=row_input, body=body, module=module))


def specs() -> list[FunctionSpec]:
    """Every declared function, in declaration order."""
    return list(_SPECS.values())


def spec(name: str) -> FunctionSpec:
    return _SPECS[name]


# -- SQL text ------------------------------------------------------------------------------------------------------
def sql_literal(value) -> str:
    """A default as SQL: NULL, true/false, a number, a quoted string, a list."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Real):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {value!r}")


def ident(name: str) -> str:
    """A parameter name quoted, so reserved words (window, when) and names like user need no special case."""
    return '"' + name.replace('"', '""') + '"'


def _signature(spec: FunctionSpec) -> str:
    params = [ident(a.name) for a in spec.args if a.default is REQUIRED]
    params += [f"{ident(a.name)} := {sql_literal(a.default)}" for a in spec.args if a.default is not REQUIRED]
    params += [f"{ident(o.name)} := {sql_literal(o.default)}" for o in spec.options]
    return ", ".join(params)


def options_sql(spec: FunctionSpec) -> str:
    """``json_object('opt', "opt", ...)``: every option, as the UDF's last argument."""
    return "json_object(" + ", ".join(f"'{o.name}', {ident(o.name)}" for o in spec.options) + ")"


def call_sql(spec: FunctionSpec, udf: str | None = None) -> str:
    """The UDF call: positional arguments (cast where declared), then the options as JSON text."""
    args = [f"CAST({ident(a.name)} AS {a.sql_type})" if a.cast else ident(a.name) for a in spec.args]
    if spec.options:
        args.append(options_sql(spec) + "::VARCHAR")
    return f"{udf or spec.udf}({', '.join(args)})"


def macro_sql(spec: FunctionSpec) -> str | None:
    """The ``CREATE OR REPLACE TEMP MACRO`` statement of a public function (None for an internal UDF)."""
    if not spec.public:
        return None
    if spec.kind == "table":
        call = (f"FROM query({call_sql(spec, spec.udf + '_sql')})" if spec.key_types
                else f"SELECT unnest({call_sql(spec)}, recursive := true)")
    else:
        call = call_sql(spec) if spec.kind == "scalar" else ""
    body = call if spec.body is None else spec.body.replace("{call}", call).replace(
        "{options}", options_sql(spec) if spec.options else "NULL")
    code = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--")).lstrip().upper()
    table = spec.kind == "table" or code.startswith(("SELECT", "FROM", "WITH"))
    return (f"-- {spec.doc}\nCREATE OR REPLACE TEMP MACRO {spec.name}({_signature(spec)}) AS"
            f"{' TABLE' if table else ''}\n{body}")


def writing_names() -> frozenset[str]:
    """Functions that change the model store: public names, their UDFs, and their bind-time SQL writers."""
    out = set()
    for s in _SPECS.values():
        if s.writes:
            out.add(s.name)
            if s.udf:
                out.add(s.udf)
                if s.key_types:
                    out.add(s.udf + "_sql")
    return frozenset(out)


def relation_readers() -> dict[str, tuple[list[str], frozenset[str]]]:
    """Macro name -> (its positional parameters in order, those naming a relation it reads), for the public
    functions that read a relation given by name."""
    return {s.name: ([a.name for a in s.args], s.relation_parameters) for s in _SPECS.values()
            if s.public and s.relation_parameters}


def row_functions() -> frozenset[str]:
    """Public functions that take a whole row (``f(m, *)`` is rewritten to pass the row as a struct)."""
    return frozenset(s.name for s in _SPECS.values() if s.row_input and s.public)


def signature_text(spec: FunctionSpec) -> str:
    """``name(arg, option := default, ...)`` as a user writes it (README's table)."""
    params = [a.name for a in spec.args if a.default is REQUIRED]
    params += [f"{a.name} := {sql_literal(a.default)}" for a in spec.args if a.default is not REQUIRED]
    params += [f"{o.name} := {sql_literal(o.default)}" for o in spec.options]
    return f"{spec.name}({', '.join(params)})"


def function_table(all_specs: Iterable[FunctionSpec] | None = None) -> str:
    """README's function table, generated from the specs (tests/test_spec.py checks README against it)."""
    rows = ["| function | what it does | changes the store |", "|---|---|---|"]
    for s in sorted((s for s in (all_specs or specs()) if s.public), key=lambda s: (s.module, s.name)):
        rows.append(f"| `{signature_text(s)}` | {s.doc} | {'yes' if s.writes else ''} |")
    return "\n".join(rows)
