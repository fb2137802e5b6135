-- rfm_segments: recency, frequency and monetary scores 1-5 (5 = most recent / most orders / most spend; ties
-- share a score) and the standard RFM segment from the recency and frequency scores.
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
ORDER BY 1
