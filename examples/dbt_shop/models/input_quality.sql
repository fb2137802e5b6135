-- Inputs need not be tables: data_quality of a view (daily_units) and of query text over a source.
select 'daily_units' as input, "column" as col, type, null_fraction
from data_quality('{{ ref("daily_units") }}')
union all
select 'large orders' as input, "column" as col, type, null_fraction
from data_quality('select user_id, amount from {{ source("shop", "orders") }} where amount > 100')
