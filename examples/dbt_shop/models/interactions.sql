-- Who bought what: purchase events as implicit feedback for the recommender.
select user_id, product_id, count(*)::DOUBLE as weight
from {{ source("shop", "events") }}
where event_type = 'purchase'
group by all
