-- user_features: one row per user with an order at or before as_of (a DATE means the end of that day; the
-- default is the last order time). recency_days and tenure_days are calendar days from the last and the first
-- order to as_of. With label_window := N, churned = 1 when the user has no order in the N days after as_of.
-- avg_discount appears when the relation has a numeric discount column (discount_col := names another).
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
ORDER BY 1
