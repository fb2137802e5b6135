-- Key drivers (contribution analysis): the segments that explain a metric's change from control to test.
-- metric := 'revenue' sums a column ('*' counts rows); denominator := 'sessions' makes the metric
-- sum(metric) / sum(denominator) ('*' divides by rows: a mean per row, e.g. a conversion rate).
CREATE OR REPLACE TEMP MACRO key_drivers(relation, metric := NULL, dimensions := NULL, period := NULL, test := NULL,
                                         control := NULL, denominator := NULL, max_depth := 3, min_support := 0.01,
                                         alpha := 0.05, correction := 'holm', max_values := 1000,
                                         max_segments := 10000) AS TABLE
    SELECT unnest(wml_key_drivers(relation, json_object(
        'metric', metric, 'dimensions', dimensions, 'period', period, 'test', test, 'control', control,
        'denominator', denominator, 'max_depth', max_depth, 'min_support', min_support, 'alpha', alpha,
        'correction', correction, 'max_values', max_values, 'max_segments', max_segments)), recursive := true);
