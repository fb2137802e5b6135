-- Recommendations (SQL_SURFACE.md section 5). The first argument names a table/view of interactions (a
-- recommender is trained on the fly) or a model trained with ml_train(..., task := 'recommend') (a lookup).
-- user and item come back with the types of the source columns: the call runs through query() on SQL text that a
-- bind-time UDF writes with the casts (warehouse_ml/binding/keys.py).
CREATE OR REPLACE TEMP MACRO recommend_items(relation, k, "user" := NULL, item := NULL, weight := NULL,
                                             "time" := NULL, event := NULL, event_weights := NULL,
                                             method := 'auto', exclude_seen := true, for_users := NULL,
                                             segment := NULL, params := NULL, budget := NULL,
                                             exclude := NULL, candidates := NULL) AS TABLE
    FROM query(wml_recommend_items_sql(relation, k, json_object(
        'user', "user", 'item', item, 'weight', weight, 'time', "time", 'event', event,
        'event_weights', event_weights, 'method', method, 'exclude_seen', exclude_seen,
        'for_users', for_users, 'segment', segment, 'params', params, 'budget', budget,
        'exclude', exclude, 'candidates', candidates)::VARCHAR));

CREATE OR REPLACE TEMP MACRO similar_items(relation, k, "user" := NULL, item := NULL, weight := NULL,
                                           "time" := NULL, event := NULL, event_weights := NULL,
                                           method := 'auto', params := NULL) AS TABLE
    FROM query(wml_similar_items_sql(relation, k, json_object(
        'user', "user", 'item', item, 'weight', weight, 'time', "time", 'event', event,
        'event_weights', event_weights, 'method', method, 'params', params)::VARCHAR));

CREATE OR REPLACE TEMP MACRO evaluate_recommender(relation, k, "user" := NULL, item := NULL, weight := NULL,
                                                  "time" := NULL, event := NULL, event_weights := NULL,
                                                  methods := NULL, test_fraction := 0.2, params := NULL,
                                                  seed := 0, budget := NULL) AS TABLE
    SELECT unnest(wml_evaluate_recommender(relation, k, json_object(
        'user', "user", 'item', item, 'weight', weight, 'time', "time", 'event', event,
        'event_weights', event_weights, 'methods', methods, 'test_fraction', test_fraction,
        'params', params, 'seed', seed, 'budget', budget)::VARCHAR), recursive := true);
