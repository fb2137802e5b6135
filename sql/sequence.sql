-- Next-purchase prediction from event histories (SQL_SURFACE.md sections 2 and 7): a GRU over each user's
-- last events, trained with ml_train(model, relation, task := 'sequence', ...). Scoring reads the event relation
-- (a user's score depends on all their events), so it is a table function rather than a row function.
-- as_of: events on or before it are used (default: the latest event); a DATE means midnight at its start.
-- "user" keeps the user column's type (query() over SQL written at bind time: warehouse_ml/binding/keys.py).
CREATE OR REPLACE TEMP MACRO ml_predict_sequence(model, relation, as_of := NULL) AS TABLE
    FROM query(wml_predict_sequence_sql(model, relation, json_object('as_of', as_of)::VARCHAR));

-- The model named 'next_purchase': will a user purchase within horizon_days?
CREATE OR REPLACE TEMP MACRO train_next_purchase(relation, "user" := NULL, "time" := NULL, event := NULL,
                                                 item := NULL, purchase_event := NULL, horizon_days := 14,
                                                 as_of := NULL, params := NULL) AS TABLE
    SELECT unnest(wml_train('next_purchase', relation, json_object(
        'task', 'sequence', 'user', "user", 'time', "time", 'event', event, 'item', item,
        'purchase_event', purchase_event, 'horizon_days', horizon_days, 'as_of', as_of,
        'params', params)::VARCHAR), recursive := true);
CREATE OR REPLACE TEMP MACRO predict_next_purchase(relation, as_of := NULL) AS TABLE
    FROM ml_predict_sequence('next_purchase', relation, as_of := as_of);
