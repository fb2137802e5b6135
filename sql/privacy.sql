-- Privacy (SQL_SURFACE.md section 10): differentially private aggregates, budgets, pseudonyms.

-- dp_aggregate: one row per released group and metric. The UDF bounds contributions, adds OpenDP noise,
-- suppresses rare groups and records the release in wml.dp_ledger; the macro joins each released group back
-- to its key columns (read from the relation, so they keep their types). The relation is read as
-- query_table(wml_dp_relation(...)), which checks every argument while DuckDB binds the macro.
CREATE OR REPLACE TEMP MACRO dp_aggregate(relation, group_by := NULL, metrics := NULL, bounds := NULL,
        epsilon := 1.0, delta := 1e-6, privacy_unit := NULL, max_groups_per_unit := 1,
        max_rows_per_unit := 1) AS TABLE
WITH released AS (
    SELECT unnest(wml_dp_aggregate(relation, json_object(
        'group_by', group_by, 'metrics', metrics, 'bounds', bounds, 'epsilon', epsilon, 'delta', delta,
        'privacy_unit', privacy_unit, 'max_groups_per_unit', max_groups_per_unit,
        'max_rows_per_unit', max_rows_per_unit)), recursive := true)
), src AS (
    SELECT *, 1 AS __wml_one
    FROM query_table(wml_dp_relation(relation, CAST(json_object(
        'group_by', group_by, 'metrics', metrics, 'bounds', bounds, 'epsilon', epsilon, 'delta', delta,
        'privacy_unit', privacy_unit, 'max_groups_per_unit', max_groups_per_unit,
        'max_rows_per_unit', max_rows_per_unit) AS VARCHAR)))
), keys AS (
    SELECT *, CAST(row(*COLUMNS(*)) AS VARCHAR) AS __wml_key
    FROM (SELECT DISTINCT COLUMNS(lambda c: c = '__wml_one'
            OR list_contains(list_transform(coalesce(CAST(group_by AS VARCHAR[]), []), lambda x: lower(x)), lower(c)))
          FROM src)
)
SELECT keys.* EXCLUDE (__wml_one, __wml_key), released.* EXCLUDE (group_key)
FROM released LEFT JOIN keys ON released.group_key = keys.__wml_key
ORDER BY ALL;

-- The privacy budget of a relation: what may be spent in total, what was spent, what is left.
CREATE OR REPLACE TEMP MACRO dp_set_budget(relation, epsilon := NULL, delta := 1e-5) AS TABLE
    SELECT unnest(wml_dp_set_budget(relation, CAST(epsilon AS DOUBLE), CAST(delta AS DOUBLE)), recursive := true);

CREATE OR REPLACE TEMP MACRO dp_budget(relation := NULL) AS TABLE
    SELECT unnest(wml_dp_budget(relation), recursive := true);

-- pseudonymize: the relation's own columns, with each listed column replaced by its keyed hash
-- (HMAC-SHA256 as 64 hex characters, computed by DuckDB column-wise): the same value and key always give the
-- same pseudonym, so tables pseudonymized with one key still join; without the key the values cannot be
-- recomputed from a list of guesses. NULL stays NULL.
CREATE OR REPLACE TEMP MACRO pseudonymize(relation, columns := NULL, "key" := NULL) AS TABLE
    SELECT COLUMNS(lambda c: NOT list_contains(list_transform(CAST(columns AS VARCHAR[]), lambda x: lower(x)), lower(c))),
        sha256(wml_hmac_pad("key", 'outer') || unhex(sha256(wml_hmac_pad("key", 'inner')
            || encode(CAST(COLUMNS(lambda c: list_contains(list_transform(CAST(columns AS VARCHAR[]), lambda x: lower(x)),
                                            lower(c))) AS VARCHAR)))))
    FROM query_table(wml_pseudonym_check(relation, CAST(columns AS VARCHAR[]), "key"));
