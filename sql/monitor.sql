-- Keeping models right (SQL_SURFACE.md section 10). Python: warehouse_ml/functions/monitor.py.
-- threshold: a number for every distribution statistic, or a struct naming some of psi (default 0.2),
-- jensen_shannon (0.1), ks (0.05, a p-value), chi_square (0.05, a p-value) and decay (0.1: the model's main
-- metric 10% worse than on its training hold-out); an effect size is flagged only when a chi-square test on the
-- same counts also rejects sampling noise (p < 0.01). numeric := 'psi' | 'ks'; categorical := 'jensen_shannon' |
-- 'chi_square'. record := false leaves the monitoring history untouched.
CREATE OR REPLACE TEMP MACRO ml_drift(model, relation, threshold := NULL, numeric := 'psi',
                                      categorical := 'jensen_shannon', record := true) AS TABLE
    SELECT unnest(wml_drift(model, relation, json_object('threshold', threshold, 'numeric', numeric,
        'categorical', categorical, 'record', record)), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_monitoring(model) AS TABLE
    SELECT unnest(wml_monitoring(model), recursive := true);

-- Continual learning. ml_update grows trees on the new rows for random forests (trees := n), trains an MLP further
-- from its weights (epochs := n, default 5) and retrains the other algorithms with the active version's settings;
-- "window" := INTERVAL 180 DAY with time := 'col' keeps only the latest rows. ml_retrain checks drift first
-- (recorded) and retrains only when "when" := 'drift' (drift or decay), 'decay' or 'always' says so. WINDOW and
-- WHEN are reserved words in DuckDB, so these two argument names are quoted. Both deploy by policy (default
-- 'if_better') and are recorded in ml_monitoring.
CREATE OR REPLACE TEMP MACRO ml_update(model, relation, "window" := NULL, time := NULL, deploy := 'if_better',
                                       trees := NULL, epochs := NULL, test_size := NULL) AS TABLE
    SELECT unnest(wml_update(model, relation, json_object('window', "window", 'time', time, 'deploy', deploy,
        'trees', trees, 'epochs', epochs, 'test_size', test_size)), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_retrain(model, relation, "when" := 'drift', threshold := NULL, deploy := 'if_better',
                                        "window" := NULL, time := NULL) AS TABLE
    SELECT unnest(wml_retrain(model, relation, json_object('when', "when", 'threshold', threshold, 'deploy', deploy,
        'window', "window", 'time', time)), recursive := true);

-- Forecast accuracy tracking: save_forecast is forecast_demand whose rows are also kept (wml.forecasts) under
-- name (the relation's name by default) with their run time; forecast_accuracy(name) scores every saved run
-- against the actuals now in the relation, per item and overall.
CREATE OR REPLACE TEMP MACRO save_forecast(relation, horizon, item := NULL, date := NULL, value := NULL,
        method := 'auto', level := 0.95, name := NULL) AS TABLE
    SELECT unnest(wml_save_forecast(relation, horizon, json_object('item', item, 'date', date, 'value', value,
        'method', method, 'level', level, 'name', name)), recursive := true);

CREATE OR REPLACE TEMP MACRO forecast_accuracy(name) AS TABLE
    SELECT unnest(wml_forecast_accuracy(name), recursive := true);
