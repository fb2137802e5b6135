-- Units per day over all SKUs: a plain view (no warehouse-ml call in it, so a view is fine).
{{ config(materialized="view") }}
select day, sum(units) as units from {{ source("shop", "daily_sales") }} group by day
