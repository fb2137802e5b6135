-- Demand forecasting and inventory (SQL_SURFACE.md section 4). Python kernels: warehouse_ml/functions/forecast.py.
-- item/date/value name the columns (inferred when unambiguous); horizon and lead_time are in periods of the
-- data's inferred frequency (days for daily data).
-- Types survive: the table UDFs hand keys over as text and dates as DATE; each macro casts them back to the type
-- of the source column (cast_to_type against a one-row probe of that column, picked by the catalog name that
-- wml_forecast_column resolves; a relation without an item column probes a NULL placeholder).
-- method := 'gbm' learns from features (columns of the relation) whose planned values over the horizon come from
-- future (a relation with the same item, date and feature columns), from holidays (a country code) and from events
-- (a relation with a date, an event name and optionally the item: the user's own calendar); auto considers gbm
-- among its candidates when any of them is given.
CREATE OR REPLACE TEMP MACRO forecast_demand(relation, horizon, item := NULL, date := NULL, value := NULL,
        method := 'auto', level := 0.95, features := NULL, future := NULL, holidays := NULL, events := NULL) AS TABLE
    SELECT cast_to_type(f.item, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'item', item, date, value))
                FROM (SELECT *, NULL::VARCHAR AS __wml_no_item FROM query_table(wml_forecast_source(relation))) LIMIT 1)) AS item,
           cast_to_type(f.date, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'date', item, date, value))
                FROM query_table(wml_forecast_source(relation)) LIMIT 1)) AS date,
           f.forecast, f.lower, f.upper, f.method
    FROM (SELECT unnest(wml_forecast_demand(relation, horizon, json_object('item', item, 'date', date, 'value', value,
        'method', method, 'level', level, 'features', features, 'future', future, 'holidays', holidays,
        'events', events)),
        recursive := true)) f;

CREATE OR REPLACE TEMP MACRO backtest_demand(relation, horizon, folds := 3, item := NULL, date := NULL,
        value := NULL, method := NULL, level := 0.95) AS TABLE
    SELECT cast_to_type(f.item, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'item', item, date, value))
                FROM (SELECT *, NULL::VARCHAR AS __wml_no_item FROM query_table(wml_forecast_source(relation))) LIMIT 1)) AS item,
           f.method, f.mase, f.smape, f.rmse, f.coverage, f.folds
    FROM (SELECT unnest(wml_backtest_demand(relation, horizon, json_object('folds', folds, 'item', item, 'date', date,
        'value', value, 'method', method, 'level', level)), recursive := true)) f;

CREATE OR REPLACE TEMP MACRO reorder_plan(relation, lead_time := 7, service_level := 0.95, on_hand := NULL,
        item := NULL, date := NULL, value := NULL, method := 'auto', review_period := 0, on_hand_item := NULL,
        on_hand_qty := NULL) AS TABLE
    SELECT cast_to_type(f.item, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'item', item, date, value))
                FROM (SELECT *, NULL::VARCHAR AS __wml_no_item FROM query_table(wml_forecast_source(relation))) LIMIT 1)) AS item,
           f.lead_time_demand, f.safety_stock, f.reorder_point, f.on_hand, f.order_qty, f.method
    FROM (SELECT unnest(wml_reorder_plan(relation, json_object('lead_time', lead_time, 'service_level', service_level,
        'on_hand', on_hand, 'item', item, 'date', date, 'value', value, 'method', method,
        'review_period', review_period, 'on_hand_item', on_hand_item, 'on_hand_qty', on_hand_qty)),
        recursive := true)) f;

-- detect_anomalies: every period of history against a robust trend + season decomposition of its series;
-- level is the band's probability (values outside it are anomalies), score the distance in robust spreads.
-- With model := 'name' (a forecast kept by save_forecast under that name), the relation's rows on the forecast
-- dates against that forecast and its band (rescaled to level), like BigQuery's ML.DETECT_ANOMALIES.
CREATE OR REPLACE TEMP MACRO detect_anomalies(relation, item := NULL, date := NULL, value := NULL,
        level := 0.99, model := NULL) AS TABLE
    SELECT cast_to_type(f.item, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'item', item, date, value))
                FROM (SELECT *, NULL::VARCHAR AS __wml_no_item FROM query_table(wml_forecast_source(relation))) LIMIT 1)) AS item,
           cast_to_type(f.date, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'date', item, date, value))
                FROM query_table(wml_forecast_source(relation)) LIMIT 1)) AS date,
           f.value, f.expected, f.lower, f.upper, f.is_anomaly, f.score
    FROM (SELECT unnest(wml_detect_anomalies(relation, json_object('item', item, 'date', date, 'value', value,
        'level', level, 'model', model)), recursive := true)) f;

-- explain_forecast: the forecast of each item taken apart; level + trend + season + yearly + holiday + the sum of
-- drivers' values + residual = forecast. The ETS forecast by default; with features/future/holidays/events (or
-- method := 'gbm') the global model's, whose level is its forecast with every driver at its baseline.
CREATE OR REPLACE TEMP MACRO explain_forecast(relation, horizon, item := NULL, date := NULL, value := NULL,
        method := NULL, features := NULL, future := NULL, holidays := NULL, events := NULL) AS TABLE
    SELECT cast_to_type(f.item, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'item', item, date, value))
                FROM (SELECT *, NULL::VARCHAR AS __wml_no_item FROM query_table(wml_forecast_source(relation))) LIMIT 1)) AS item,
           cast_to_type(f.date, (SELECT COLUMNS(lambda c: c = wml_forecast_column(relation, 'date', item, date, value))
                FROM query_table(wml_forecast_source(relation)) LIMIT 1)) AS date,
           f.forecast, f.level, f.trend, f.season, f.yearly, f.holiday, f.drivers, f.residual, f.method
    FROM (SELECT unnest(wml_explain_forecast(relation, horizon, json_object('item', item, 'date', date,
        'value', value, 'method', method, 'features', features, 'future', future, 'holidays', holidays,
        'events', events)), recursive := true)) f;
