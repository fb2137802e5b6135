-- Forecast of daily units per SKU, with a 95% interval (lower, upper) and the method chosen per series.
select * from forecast_demand('{{ ref("top_sku_sales") }}', {{ var("forecast_horizon") }},
                              item := 'sku', date := 'day', value := 'units')
