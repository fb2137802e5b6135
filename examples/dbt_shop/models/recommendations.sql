-- Top-5 products per user not bought yet. If this warehouse-ml build has no recommender, the table is
-- created empty with the same columns (and the log says so), so the rest of the project still runs.
{% if wml_has_function('recommend_items') %}
select "user" as user_id, rank, item as product_id, score
from recommend_items('{{ ref("interactions") }}', 5, "user" := 'user_id', item := 'product_id', weight := 'weight')
{% else %}
{{ log("warehouse-ml: recommend_items is not available in this build; recommendations is empty", info=True) }}
select NULL::VARCHAR as user_id, NULL::BIGINT as rank, NULL::VARCHAR as product_id, NULL::DOUBLE as score
where false
{% endif %}
