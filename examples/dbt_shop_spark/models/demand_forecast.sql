-- Forecast of daily units per SKU with a 95% interval. DuckDB: forecast_demand('top_sku_sales', 14, item := 'sku',
-- date := 'day', value := 'units', method := 'ets').
select * from forecast_demand(TABLE({{ ref("top_sku_sales") }}) PARTITION BY (sku), {{ var("forecast_horizon") }}, 'ets')
