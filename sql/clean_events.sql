-- clean_events: the relation's own columns, with duplicates removed (dedupe := NULL: whole-row duplicates;
-- a list: one row per key, the first by column values; []: keep duplicates), rows missing a required column
-- dropped (required := NULL means the ID-like columns, id and *_id, which are never imputed; [] means none),
-- and remaining gaps filled: 'median' (numbers: median, text/booleans: most common value), 'mode'
-- (most common value), 'zero' (numbers 0, booleans false), 'none'. Dates and timestamps are never filled.
WITH src AS (
    SELECT *, 1 AS __wml_one
    FROM query(wml_prep_check('clean_events', relation,
        CAST({options} AS VARCHAR)))
), req AS (
    SELECT * FROM src
    WHERE COLUMNS(lambda c: c = '__wml_one'
        OR list_contains(wml_prep_required(relation, CAST(required AS VARCHAR[])), lower(c))) IS NOT NULL
), keyed AS (
    SELECT *,
        row(*COLUMNS(lambda c: c = '__wml_one' OR (NOT starts_with(c, '__wml_') AND (dedupe IS NULL
            OR list_contains(list_transform(CAST(dedupe AS VARCHAR[]), lambda x: lower(x)), lower(c)))))) AS __wml_key,
        row(*COLUMNS(lambda c: NOT starts_with(c, '__wml_'))) AS __wml_all
    FROM req
), deduped AS (
    SELECT * EXCLUDE (__wml_one, __wml_key, __wml_all) FROM keyed
    QUALIFY (dedupe IS NOT NULL AND len(CAST(dedupe AS VARCHAR[])) = 0)
        OR row_number() OVER (PARTITION BY __wml_key ORDER BY __wml_all) = 1
)
SELECT coalesce(COLUMNS(*), CASE
        WHEN lower(fill) = 'median' AND typeof(COLUMNS(*))
                SIMILAR TO '(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DOUBLE|FLOAT|DECIMAL.*)'
            THEN cast_to_type(median(COLUMNS(*)) OVER (),
                              COLUMNS(*))
        WHEN lower(fill) IN ('median', 'mode') AND typeof(COLUMNS(*))
                NOT SIMILAR TO '(DATE|TIME.*)'
            THEN mode(COLUMNS(*)) OVER ()
        WHEN lower(fill) = 'zero' AND typeof(COLUMNS(*))
                SIMILAR TO '(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DOUBLE|FLOAT|DECIMAL.*|BOOLEAN)'
            THEN cast_to_type('0', COLUMNS(*))
    END)
FROM deduped
