-- One product per (user, rank), and no user is recommended the same product twice.
select user_id, rank, count(*) from {{ ref('recommendations') }} group by all having count(*) > 1
union all
select user_id, product_id::BIGINT, count(*) from {{ ref('recommendations') }} group by all having count(*) > 1
