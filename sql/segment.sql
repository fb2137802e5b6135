-- Behavioural segments (SQL_SURFACE.md section 6). segment_users fits k-means and stores it as a model
-- (default name 'segments'), so ml_predict('segments', u) assigns new users. "user" keeps the user column's type
-- (query() over SQL that a bind-time UDF writes with the cast: warehouse_ml/binding/keys.py).
CREATE OR REPLACE TEMP MACRO segment_users(relation, k := 'auto', model := 'segments', "user" := NULL,
                                           features := NULL, exclude := NULL, max_k := 8, seed := 0) AS TABLE
    FROM query(wml_segment_users_sql(relation, json_object(
        'k', k, 'model', model, 'user', "user", 'features', features, 'exclude', exclude, 'max_k', max_k,
        'seed', seed)::VARCHAR));

CREATE OR REPLACE TEMP MACRO segment_profiles(relation, model := 'segments', k := NULL, "user" := NULL,
                                              features := NULL, exclude := NULL, max_k := 8, seed := 0,
                                              epsilon := NULL, bounds := NULL) AS TABLE
    SELECT unnest(wml_segment_profiles(relation, json_object(
        'k', k, 'model', model, 'user', "user", 'features', features, 'exclude', exclude, 'max_k', max_k,
        'seed', seed, 'epsilon', epsilon, 'bounds', bounds)), recursive := true);
