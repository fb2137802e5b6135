-- Prices (SQL_SURFACE.md section 6): per-item demand curves and profit-maximising prices.
-- Default model: a Poisson GLM (log link) of units on log price per item, with trend, weekday and yearly
-- controls from the date column (controls := 'none' or no date: log price only; model := 'loglog' for OLS of
-- log units). The method column says what was fitted for each item.
CREATE OR REPLACE TEMP MACRO price_elasticity(relation, item := NULL, price := NULL, units := NULL, date := NULL,
                                              controls := 'auto', model := 'poisson', alpha := 0.05,
                                              min_rows := 5, min_price_variation := 0.02) AS TABLE
    SELECT unnest(wml_price_elasticity(relation, json_object(
        'item', item, 'price', price, 'units', units, 'date', date, 'controls', controls, 'model', model,
        'alpha', alpha, 'min_rows', min_rows, 'min_price_variation', min_price_variation)), recursive := true);

CREATE OR REPLACE TEMP MACRO optimal_price(relation, cost := NULL, item := NULL, price := NULL, units := NULL,
                                           date := NULL, controls := 'auto', model := 'poisson',
                                           min_price := NULL, max_price := NULL,
                                           within_observed := true, alpha := 0.05, min_rows := 5,
                                           min_price_variation := 0.02) AS TABLE
    SELECT unnest(wml_optimal_price(relation, json_object(
        'cost', cost, 'item', item, 'price', price, 'units', units, 'date', date, 'controls', controls,
        'model', model, 'min_price', min_price, 'max_price', max_price, 'within_observed', within_observed,
        'alpha', alpha, 'min_rows', min_rows, 'min_price_variation', min_price_variation)), recursive := true);
