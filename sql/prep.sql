-- Data preparation and user profiles (SQL_SURFACE.md section 1).
-- The relation is read as query(wml_prep_check(...)): the UDF runs while DuckDB binds the FROM clause,
-- resolves the name against the catalog, checks every argument (unknown columns get a did-you-mean) and returns
-- a SELECT of the catalog's quoted name (or of the validated query text). Columns named by strings are picked
-- with COLUMNS(lambda c: ...), never pasted.

-- clean_events: the relation's own columns, with duplicates removed (dedupe := NULL: whole-row duplicates;
-- a list: one row per key, the first by column values; []: keep duplicates), rows missing a required column
-- dropped (required := NULL means the ID-like columns, id and *_id, which are never imputed; [] means none),
-- and remaining gaps filled: 'median' (numbers: median, text/booleans: most common value), 'mode'
-- (most common value), 'zero' (numbers 0, booleans false), 'none'. Dates and timestamps are never filled.
CREATE OR REPLACE TEMP MACRO clean_events(relation, dedupe := NULL, required := NULL, fill := 'median') AS TABLE
WITH src AS (
    SELECT *, 1 AS __wml_one
    FROM query(wml_prep_check('clean_events', relation,
        CAST(to_json({'dedupe': dedupe, 'required': required, 'fill': fill}) AS VARCHAR)))
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
        WHEN fill = 'median' AND typeof(COLUMNS(*))
                SIMILAR TO '(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DOUBLE|FLOAT|DECIMAL.*)'
            THEN cast_to_type(median(COLUMNS(*)) OVER (),
                              COLUMNS(*))
        WHEN fill IN ('median', 'mode') AND typeof(COLUMNS(*))
                NOT SIMILAR TO '(DATE|TIME.*)'
            THEN mode(COLUMNS(*)) OVER ()
        WHEN fill = 'zero' AND typeof(COLUMNS(*))
                SIMILAR TO '(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DOUBLE|FLOAT|DECIMAL.*|BOOLEAN)'
            THEN cast_to_type('0', COLUMNS(*))
    END)
FROM deduped;

-- user_features: one row per user with an order at or before as_of (a DATE means the end of that day; the
-- default is the last order time). recency_days and tenure_days are calendar days from the last and the first
-- order to as_of. With label_window := N, churned = 1 when the user has no order in the N days after as_of.
-- avg_discount appears when the relation has a numeric discount column (discount_col := names another).
CREATE OR REPLACE TEMP MACRO user_features(orders, as_of := NULL, user_col := 'user_id', time_col := 'order_ts',
        amount_col := 'amount', label_window := NULL, discount_col := NULL) AS TABLE
WITH src AS (
    SELECT COLUMNS(lambda c: lower(c) = lower(user_col)),
        CAST(COLUMNS(lambda c: lower(c) = lower(time_col)) AS TIMESTAMP) AS __wml_t,
        CAST(COLUMNS(lambda c: lower(c) = lower(amount_col)) AS DOUBLE) AS __wml_a,
        CAST(COLUMNS(lambda c: c = wml_prep_column(orders, [discount_col, 'discount'], '__wml_no_discount')) AS DOUBLE) AS __wml_d
    FROM (
        SELECT *, CAST(NULL AS DOUBLE) AS __wml_no_discount
        FROM query(wml_prep_check('user_features', orders, CAST(to_json({
            'user_col': user_col, 'time_col': time_col, 'amount_col': amount_col, 'discount_col': discount_col,
            'as_of': as_of, 'as_of_type': typeof(as_of),
            'label_window': label_window, 'label_window_type': typeof(label_window)}) AS VARCHAR)))
    )
), cut AS (
    SELECT CASE
        WHEN as_of IS NULL THEN max(__wml_t)
        WHEN typeof(as_of) = 'DATE' OR (typeof(as_of) = 'VARCHAR' AND length(trim(CAST(as_of AS VARCHAR))) <= 10)
            THEN CAST(CAST(as_of AS DATE) AS TIMESTAMP) + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND
        ELSE CAST(as_of AS TIMESTAMP) END AS __wml_cut
    FROM src
), tagged AS (
    SELECT src.*, __wml_cut,
        __wml_t <= __wml_cut AS __wml_h,
        __wml_t > __wml_cut AND __wml_t <= __wml_cut + to_days(CAST(coalesce(label_window, 0) AS INTEGER)) AS __wml_f
    FROM src, cut
    WHERE __wml_t IS NOT NULL AND COLUMNS(lambda c: lower(c) = lower(user_col)) IS NOT NULL
), feats AS (
    SELECT COLUMNS(lambda c: lower(c) = lower(user_col)),
        date_diff('day', max(__wml_t) FILTER (__wml_h), max(__wml_cut)) AS recency_days,
        count(*) FILTER (__wml_h) AS frequency,
        coalesce(sum(__wml_a) FILTER (__wml_h), 0) AS monetary,
        avg(__wml_a) FILTER (__wml_h) AS avg_order_value,
        date_diff('day', min(__wml_t) FILTER (__wml_h), max(__wml_cut)) AS tenure_days,
        count(*) FILTER (__wml_h AND __wml_t > __wml_cut - INTERVAL 30 DAY) AS orders_30d,
        count(*) FILTER (__wml_h AND __wml_t > __wml_cut - INTERVAL 90 DAY) AS orders_90d,
        avg(__wml_d) FILTER (__wml_h) AS avg_discount,
        CASE WHEN count(*) FILTER (__wml_h) > 1 THEN
            date_diff('second', min(__wml_t) FILTER (__wml_h), max(__wml_t) FILTER (__wml_h))
                / 86400.0 / (count(*) FILTER (__wml_h) - 1) END AS days_between_orders,
        CASE WHEN count(*) FILTER (__wml_f) > 0 THEN 0 ELSE 1 END AS churned
    FROM tagged
    WHERE __wml_h OR __wml_f
    GROUP BY ALL
    HAVING count(*) FILTER (__wml_h) > 0
)
SELECT COLUMNS(lambda c: (c <> 'churned' OR label_window IS NOT NULL)
    AND (c <> 'avg_discount' OR wml_prep_column(orders, [discount_col, 'discount'], '__wml_no_discount') <> '__wml_no_discount'))
FROM feats
ORDER BY 1;

-- rfm_segments: recency, frequency and monetary scores 1-5 (5 = most recent / most orders / most spend; ties
-- share a score) and the standard RFM segment from the recency and frequency scores.
CREATE OR REPLACE TEMP MACRO rfm_segments(orders, as_of := NULL, user_col := 'user_id', time_col := 'order_ts',
        amount_col := 'amount') AS TABLE
WITH f AS (
    FROM user_features(orders, as_of := as_of, user_col := user_col, time_col := time_col, amount_col := amount_col)
), scored AS (
    SELECT COLUMNS(lambda c: lower(c) = lower(user_col)), recency_days, frequency, monetary,
        CAST(least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY recency_days DESC))) AS INTEGER) AS r_score,
        CAST(least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY frequency))) AS INTEGER) AS f_score,
        CAST(least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY monetary))) AS INTEGER) AS m_score
    FROM f
)
SELECT *,
    CAST(r_score AS VARCHAR) || CAST(f_score AS VARCHAR) || CAST(m_score AS VARCHAR) AS rfm_score,
    CASE
        WHEN r_score = 5 AND f_score >= 4 THEN 'Champions'
        WHEN r_score >= 3 AND f_score >= 4 THEN 'Loyal'
        WHEN r_score >= 4 AND f_score >= 2 THEN 'Potential loyalist'
        WHEN r_score = 5 THEN 'New'
        WHEN r_score = 4 THEN 'Promising'
        WHEN r_score = 3 AND f_score = 3 THEN 'Need attention'
        WHEN r_score = 3 THEN 'About to sleep'
        WHEN f_score = 5 THEN 'Cannot lose them'
        WHEN f_score >= 3 THEN 'At risk'
        WHEN r_score = 1 AND f_score = 1 THEN 'Lost'
        ELSE 'Hibernating'
    END AS segment
FROM scored
ORDER BY 1;

-- data_quality: one row per column with plain-language issues.
CREATE OR REPLACE TEMP MACRO data_quality(relation) AS TABLE
    SELECT unnest(wml_data_quality(relation), recursive := true);
