-- Daily unit sales of the best-selling SKUs (the same SQL as the DuckDB project's model).
select sku, day, units
from {{ source("shop", "daily_sales") }}
where sku in (
    select sku from {{ source("shop", "daily_sales") }}
    group by sku order by sum(units) desc, sku limit {{ var("forecast_skus") }}
)
