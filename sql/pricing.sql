-- Prices (SQL_SURFACE.md section 6): per-item log-log demand curves and profit-maximising prices.
CREATE OR REPLACE TEMP MACRO price_elasticity(relation, item := NULL, price := NULL, units := NULL, alpha := 0.05,
                                              min_rows := 5, min_price_variation := 0.02) AS TABLE
    SELECT unnest(wml_price_elasticity(relation, json_object(
        'item', item, 'price', price, 'units', units, 'alpha', alpha, 'min_rows', min_rows,
        'min_price_variation', min_price_variation)), recursive := true);

CREATE OR REPLACE TEMP MACRO optimal_price(relation, cost := NULL, item := NULL, price := NULL, units := NULL,
                                           date := NULL, min_price := NULL, max_price := NULL,
                                           within_observed := true, alpha := 0.05, min_rows := 5,
                                           min_price_variation := 0.02) AS TABLE
    SELECT unnest(wml_optimal_price(relation, json_object(
        'cost', cost, 'item', item, 'price', price, 'units', units, 'date', date, 'min_price', min_price,
        'max_price', max_price, 'within_observed', within_observed, 'alpha', alpha, 'min_rows', min_rows,
        'min_price_variation', min_price_variation)), recursive := true);
