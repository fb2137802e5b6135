-- Days whose units fall outside the 99% band of their SKU's trend and season. DuckDB:
-- FROM detect_anomalies('top_sku_sales', level := 0.99) WHERE is_anomaly.
select * from detect_anomalies(TABLE({{ ref("top_sku_sales") }}) PARTITION BY (sku), 0.99) where is_anomaly
