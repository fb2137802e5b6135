"""Lean scoring paths for fitted models: what makes inference from SQL fast.

* Linear models (binary logistic regression, ridge) reduce exactly to one affine form over the raw feature
  columns: ``b + sum_j w_j * (x_j - mean_j) / scale_j + ... + W_c[category]``, where a missing x_j (NULL, NaN,
  inf, unparsable text) scores its median and its missing-indicator weight instead. That form
  scores a NumPy matrix without scikit-learn's per-call overhead, and compiles to a plain SQL expression that
  DuckDB runs in parallel with no Python at all (also usable by clients without this package).
* Tree ensembles (histogram gradient boosting, random forests, decision trees) are scored by one compiled
  traversal that releases the GIL (``trees``), so DuckDB's threads score batches in parallel.

Everything else falls back to the estimator's own ``predict_proba``/``predict``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .trees import leaf_scores, tree_scorer

#: The most nodes a decision tree may have to be written as SQL: DuckDB pays per CASE node per 2048-row vector, so
#: a bigger tree scores faster through the UDF (2M rows x 10 floats: 511 nodes 0.20 s in SQL against 0.6 s through
#: the UDF; 1,857 nodes 0.66 s against about as much)
MAX_SQL_TREE_NODES = 1023
_DBL_MAX = float(np.finfo(np.float64).max)


def linear_form(est, features: list[dict]) -> dict | None:
    """The exact affine form of a fitted linear pipeline made by ``estimators.make_estimator``, or None."""
    if not isinstance(est, Pipeline) or len(est.steps) != 2:
        return None
    prep, model = est.steps[0][1], est.steps[1][1]
    if isinstance(model, LogisticRegression) and model.coef_.shape[0] == 1:
        link, w, b = "logistic", model.coef_[0], float(model.intercept_[0])
    elif isinstance(model, Ridge) and np.ndim(model.coef_) == 1:
        link, w, b = "identity", np.asarray(model.coef_), float(model.intercept_)
    else:
        return None
    numeric, categorical, pos = [], [], 0
    for name, pipe, cols in prep.transformers_:
        if name == "num":
            imputer, scaler = pipe.named_steps["impute"], pipe.named_steps["scale"]
            k = len(cols)
            ind_cols = list(imputer.indicator_.features_) if imputer.indicator_ is not None else []
            mean, scale = scaler.mean_, scaler.scale_
            for i, j in enumerate(cols):
                term = {"name": features[j]["name"], "index": int(j), "median": float(imputer.statistics_[i]),
                        "mean": float(mean[i]), "scale": float(scale[i]), "weight": float(w[pos + i]),
                        "missing_weight": 0.0}
                if i in ind_cols:
                    m = k + ind_cols.index(i)
                    # the indicator is scaled too: its contribution is w * (1[missing] - mean) / scale
                    term["missing_weight"] = float(w[pos + m] / scale[m])
                    b += float(-w[pos + m] * mean[m] / scale[m])
                numeric.append(term)
            pos += k + len(ind_cols)
        elif name == "cat":
            onehot = pipe.named_steps["onehot"]
            for i, j in enumerate(cols):
                codes = onehot.categories_[i]
                weights = {float(c): float(w[pos + t]) for t, c in enumerate(codes)}
                cats = features[j]["categories"]
                categorical.append({"name": features[j]["name"], "index": int(j),
                                    "weights": {cats[int(c)]: v for c, v in weights.items() if c >= 0},
                                    "missing_weight": weights.get(-1.0, 0.0)})
                pos += len(codes)
        elif name != "remainder":
            return None
    if pos != len(w):
        return None
    return {"link": link, "intercept": b, "numeric": numeric, "categorical": categorical}


@njit(nogil=True, cache=True)
def _affine(X, num_idx, slope, missing_score, offset, cat_idx, cat_tables, cat_missing):  # pragma: no cover
    """The affine form, one feature column at a time (contiguous in an F-ordered X), the GIL released."""
    n = X.shape[0]
    out = np.full(n, offset)
    for k in range(num_idx.shape[0]):
        j, s, m = num_idx[k], slope[k], missing_score[k]
        for i in range(n):
            x = X[i, j]
            out[i] += s * x if np.isfinite(x) else m
    for k in range(cat_idx.shape[0]):
        j = cat_idx[k]
        for i in range(n):
            code = X[i, j]
            out[i] += cat_missing[k] if np.isnan(code) else cat_tables[k, int(code)]
    return out


class LinearScorer:
    """Scores a Featurizer matrix with the affine form, its constants packed once per model into arrays that one
    compiled pass reads: a missing number adds its slope times its median plus its missing-indicator weight,
    a category its weight from a table (unseen and NULL: the missing weight)."""

    def __init__(self, form: dict, features: list[dict]):
        num = form["numeric"]
        self.num_idx = np.array([t["index"] for t in num], dtype=np.intp)
        self.slope = np.array([t["weight"] / t["scale"] for t in num])
        self.missing_score = self.slope * np.array([t["median"] for t in num]) + [t["missing_weight"] for t in num]
        # b + sum w * (x - mean) / scale == (b - sum slope * mean) + sum slope * x
        self.offset = form["intercept"] - float(np.dot(self.slope, [t["mean"] for t in num]))
        cats = form["categorical"]
        self.cat_idx = np.array([t["index"] for t in cats], dtype=np.intp)
        width = max([len(features[t["index"]]["categories"]) for t in cats], default=0)
        self.cat_tables = np.zeros((len(cats), max(width, 1)))
        for k, t in enumerate(cats):
            for code, name in enumerate(features[t["index"]]["categories"]):
                self.cat_tables[k, code] = t["weights"].get(name, 0.0)
        self.cat_missing = np.array([t["missing_weight"] for t in cats], dtype=np.float64)
        self.logistic = form["link"] == "logistic"

    def __call__(self, X: np.ndarray) -> np.ndarray:
        z = _affine(np.asarray(X, dtype=np.float64), self.num_idx, self.slope, self.missing_score, self.offset,
                    self.cat_idx, self.cat_tables, self.cat_missing)
        if self.logistic:  # 1 / (1 + exp(-z)) in place: NumPy's vectorised exp beats a compiled scalar loop
            np.negative(z, out=z)
            np.exp(z, out=z)
            z += 1.0
            np.divide(1.0, z, out=z)
        return z


def linear_sql(form: dict, row: str, tested_only: bool = False) -> str:
    """The affine form as a DuckDB SQL expression over the struct ``row`` (e.g. ``u`` in ``FROM uf u``), in the
    folded arithmetic LinearScorer uses (each number's mean moved into the constant), all in DOUBLE.

    The numeric policy: NULL, NaN, +-inf and text that is not a number are all missing, and score the imputed
    median plus the missing indicator, as LinearScorer does. A row is first summed plainly; only when that sum is
    not finite (some number in the row is missing: NULL, NaN and inf all carry through a sum) is the row summed
    again with each number tested. Testing each number of every row cost a quarter of the expression's time, even
    where DuckDB's statistics fold the tests to true (a CASE pays per row for a constant condition); both sums
    take their terms in the same order, so a row gets the same bits either way. For the logistic link every
    number is negated here, which gives exp(-z) without a negation per row (IEEE negation is exact).

    ``tested_only`` gives the second sum alone, for every row: the same bits in less text, which is what the
    store's macro needs: DuckDB binds every model's branch of it on every query (a 10-feature model's branch took
    12-13 ms to bind in the full form and 7-8 ms in this one, while its scan of 2M rows was at most 17% slower)."""
    sign = -1.0 if form["link"] == "logistic" else 1.0
    offset = form["intercept"]
    plain, tested = [], []
    for t in form["numeric"]:
        x = f"TRY_CAST({row}.{_ident(t['name'])} AS DOUBLE)"
        slope = t["weight"] / t["scale"]
        offset -= slope * t["mean"]
        missing = slope * t["median"] + t["missing_weight"]
        plain.append(f"{_num(sign * slope)} * {x}")
        tested.append(f"CASE WHEN isfinite({x}) THEN {_num(sign * slope)} * {x} ELSE {_num(sign * missing)} END")
    parts = [_num(sign * offset)]
    if plain and tested_only:
        parts += tested
    elif plain:
        z = " + ".join(parts + plain)
        parts = [f"CASE WHEN isfinite({z}) THEN {z} ELSE {' + '.join(parts + tested)} END"]
    for t in form["categorical"]:
        x = f"CAST({row}.{_ident(t['name'])} AS VARCHAR)"
        whens = " ".join(f"WHEN {_str(c)} THEN {_num(sign * v)}" for c, v in t["weights"].items())
        if whens or t["missing_weight"]:
            parts.append(f"CASE {x} {whens} ELSE {_num(sign * t['missing_weight'])} END" if whens
                         else _num(sign * t["missing_weight"]))
    z = " + ".join(parts)
    return f"(1.0e0 / (1.0e0 + exp({z})))" if form["link"] == "logistic" else f"({z})"


def tree_sql(est, features: list[dict], row: str) -> str | None:
    """A single fitted decision tree as nested ``CASE`` over the struct ``row``, scoring what ``trees.tree_scorer``
    scores, to the bit; None for any other model or a tree over ``MAX_SQL_TREE_NODES`` nodes. (Like ``linear_sql``
    it compares a category's raw text: a model over hashed categories is not written as SQL, ``hashes_categories``.)

    Each split decides as scikit-learn's does: a number compared as float32 with the float32 threshold (written
    as the equivalent bound on the DOUBLE, so no cast can overflow), a category's code against the threshold
    (written as a list of the categories that go one way); a missing value (NULL, NaN, +-inf, unparsable text, an
    unseen or rare category) follows the node's ``missing_go_to_left``. Numbers beyond float32's range go where
    float32's infinities go. One ``BETWEEN`` or ``IN`` per node sends every missing value the right way."""
    if not sql_tree(est):
        return None
    tree, leaf = est.tree_, leaf_scores(est)

    def node(i: int) -> str:
        left, right = tree.children_left[i], tree.children_right[i]
        if left < 0:
            return _num(float(leaf[i]))
        spec, to_left = features[tree.feature[i]], bool(tree.missing_go_to_left[i])
        bound = _float32_le_bound(float(tree.threshold[i]))
        # the test picks the side a missing value does not take: present values going right, or going left
        lo, hi = (float(np.nextafter(bound, np.inf)), _DBL_MAX) if to_left else (-_DBL_MAX, bound)
        if spec["kind"] == "categorical":
            side = [c for code, c in enumerate(spec["categories"]) if lo <= code <= hi]
            test = side and f"CAST({row}.{_ident(spec['name'])} AS VARCHAR) IN ({', '.join(_str(c) for c in side)})"
        else:
            test = lo <= hi and f"TRY_CAST({row}.{_ident(spec['name'])} AS DOUBLE) BETWEEN {_num(lo)} AND {_num(hi)}"
        taken, other = (right, left) if to_left else (left, right)
        return f"CASE WHEN {test} THEN {node(taken)} ELSE {node(other)} END" if test else node(other)

    return f"({node(0)})"


def hashes_categories(features: list[dict]) -> bool:
    """Whether a model keeps a personal text feature as salted digests (``personal := 'hash'``): its SQL would
    compare them with the row's raw values, so it scores through the UDF, which hashes them first."""
    return any(isinstance(f, dict) and "hash_salt" in f for f in features)


def sql_tree(est) -> bool:
    """Whether ``tree_sql`` writes ``est`` as SQL: a single-output decision tree of at most ``MAX_SQL_TREE_NODES``."""
    return (isinstance(est, (DecisionTreeClassifier, DecisionTreeRegressor)) and getattr(est, "n_outputs_", 1) == 1
            and est.tree_.node_count <= MAX_SQL_TREE_NODES)


def _float32_le_bound(threshold: float) -> float:
    """The largest DOUBLE x with ``float32(x) <= f``, f the largest float32 at most ``threshold``: rounding to
    nearest, x goes to f below the midpoint of f and the next float32, and at the midpoint only when f is even.
    (scikit-learn splits off the missing values with an infinite threshold: every number is at most it.)"""
    f = np.float32(threshold)
    if float(f) > threshold:
        f = np.nextafter(f, np.float32(-np.inf))
    if f == np.inf:
        return _DBL_MAX
    with np.errstate(over="ignore"):
        up = np.nextafter(f, np.float32(np.inf))
    lower = -(2.0 ** 128) if f == -np.inf else float(f)  # beyond FLT_MAX, rounding goes to infinity
    upper = 2.0 ** 128 if np.isinf(up) else float(up)
    mid = (lower + upper) / 2.0  # exact: both are float32 values or 2^128
    return mid if int(np.array(f).view(np.uint32)) % 2 == 0 else float(np.nextafter(mid, -np.inf))


def inline_branch(model: str, form: dict, model_ref: str = "model") -> str:
    """One ``WHEN ... THEN ...`` of the store's scoring macro (``wml.predict_inline(model, row)``): the affine
    form over any row struct, taken only when the row has every feature the model uses.

    The row is read through ``TRY_CAST(row AS STRUCT(<features>))``, which binds for any struct (a field the row
    lacks becomes NULL), so the macro can hold one branch per model and still bind for every table; DuckDB drops
    the branches of other models when ``model`` is a constant. The field check reads ``typeof(row)``, a constant
    DuckDB folds while binding: a row missing a feature falls through to the UDF, which names the missing field,
    as it does without the macro. Every name and number is re-quoted here (``form`` is read back from the store,
    so nothing in it is pasted as SQL). ``model_ref`` is what names the model in the macro: its parameter, or in a
    model's own macro the name as a literal."""
    fields = [(str(t["name"]), "DOUBLE") for t in form["numeric"]] + [(str(t["name"]), "VARCHAR") for t in form["categorical"]]
    row = "TRY_CAST(\"row\" AS STRUCT(" + ", ".join(f"{_ident(n)} {typ}" for n, typ in fields) + "))"
    guard = " AND ".join(f"regexp_matches(typeof(\"row\"), {_str(_top_field_pattern(n))}, 'i')" for n, _ in fields)
    return f"WHEN {model_ref} = {_str(model)}{' AND ' + guard if guard else ''} THEN {linear_sql(form, row, tested_only=True)}"


def inline_macro_body(branches: list[str], model_ref: str = "model") -> str:
    """The scoring macro's body: the inlined models' branches, and the UDF for every other model and row."""
    udf = f'wml_predict({model_ref}, "row")'
    return " ".join(["CASE", *branches, f"ELSE {udf} END"]) if branches else udf


def model_macro_body(model: str, form: dict | None) -> str:
    """The body of a model's own scoring macro (``wml.predict_inline_<model>(row)``): its branch alone when it has
    a linear ``form``, with the model named by a literal, and the UDF otherwise."""
    ref = _str(model)
    return inline_macro_body([inline_branch(model, form, ref)] if form is not None else [], ref)


def _top_field_pattern(name: str) -> str:
    """An RE2 pattern for a top-level field ``name`` in DuckDB's rendering of a struct type, ``STRUCT(a DOUBLE,
    "b c" VARCHAR, ...)``: the name bare or quoted (with doubled quotes), after the opening parenthesis or a comma."""
    def lit(text: str) -> str:
        return "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "\\x{%x}" % ord(ch) for ch in text)
    quoted = '"' + name.replace('"', '""') + '"'
    return f"(^STRUCT\\(|, )({lit(name)}|{lit(quoted)}) "


def fast_scorer(est, task: str, features: list[dict]):
    """A function X -> scores equal to ``supervised.score(est, X, task)``, or None when no lean path applies."""
    form = linear_form(est, features)
    if form is not None:
        return LinearScorer(form, features)
    return tree_scorer(est)


def _num(v: float) -> str:
    """A DOUBLE literal (with an exponent: DuckDB reads a plain ``0.0105`` as a DECIMAL, and a sum of DECIMAL
    constants of different scales is computed in 128-bit decimals, several times slower than in doubles)."""
    if not math.isfinite(v):
        raise ValueError("non-finite weight cannot be compiled to SQL")
    text = repr(float(v))
    return text if "e" in text else text + "e0"


def _str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'
