-- Behavioural segments (SQL_SURFACE.md section 6). segment_users fits k-means and stores it as a model
-- (default name 'segments'), so ml_predict('segments', u) assigns new users.
CREATE OR REPLACE TEMP MACRO segment_users(relation, k := 'auto', model := 'segments', "user" := NULL,
                                           features := NULL, exclude := NULL, max_k := 8, seed := 0) AS TABLE
    SELECT unnest(wml_segment_users(relation, json_object(
        'k', k, 'model', model, 'user', "user", 'features', features, 'exclude', exclude, 'max_k', max_k,
        'seed', seed)), recursive := true);

CREATE OR REPLACE TEMP MACRO segment_profiles(relation, model := 'segments', k := NULL, "user" := NULL,
                                              features := NULL, exclude := NULL, max_k := 8, seed := 0,
                                              epsilon := NULL, bounds := NULL) AS TABLE
    SELECT unnest(wml_segment_profiles(relation, json_object(
        'k', k, 'model', model, 'user', "user", 'features', features, 'exclude', exclude, 'max_k', max_k,
        'seed', seed, 'epsilon', epsilon, 'bounds', bounds)), recursive := true);
