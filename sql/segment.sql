-- Behavioural segments (SQL_SURFACE.md section 6). segment_users fits k-means and stores it as a model
-- (default name 'segments'; deploy := 'never' keeps the active version), so ml_predict('segments', u) assigns
-- new users. Every row says which model and version it came from, and the notes say what was left out. "user"
-- keeps the user column's type (query() over SQL that a bind-time UDF writes with the cast: binding/keys.py).
CREATE OR REPLACE TEMP MACRO segment_users(relation, k := 'auto', model := 'segments', "user" := NULL,
                                           features := NULL, exclude := NULL, max_k := 8, seed := 0,
                                           deploy := 'always') AS TABLE
    FROM query(wml_segment_users_sql(relation, json_object(
        'k', k, 'model', model, 'user', "user", 'features', features, 'exclude', exclude, 'max_k', max_k,
        'seed', seed, 'deploy', deploy)::VARCHAR));

CREATE OR REPLACE TEMP MACRO segment_profiles(relation, model := 'segments', k := NULL, "user" := NULL,
                                              features := NULL, exclude := NULL, max_k := 8, seed := 0,
                                              deploy := 'always', epsilon := NULL, bounds := NULL) AS TABLE
    SELECT unnest(wml_segment_profiles(relation, json_object(
        'k', k, 'model', model, 'user', "user", 'features', features, 'exclude', exclude, 'max_k', max_k,
        'seed', seed, 'deploy', deploy, 'epsilon', epsilon, 'bounds', bounds)), recursive := true);
