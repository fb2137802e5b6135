-- One row per user with behaviour up to var('as_of') and the churn label (no order in the next 90 days).
-- The relation is passed as a string: a quoted source() or ref() renders as "db"."main"."orders", which
-- warehouse-ml resolves against the catalog (it is never pasted into SQL).
select f.*, u.channel, u.device, coalesce(t.tickets_90d, 0) as support_tickets_90d
from user_features('{{ source("shop", "orders") }}', as_of := DATE '{{ var("as_of") }}', label_window := 90) f
join {{ source("shop", "users") }} u using (user_id)
left join (
    select user_id, count(*) as tickets_90d
    from {{ source("shop", "support_tickets") }}
    where created_at < DATE '{{ var("as_of") }}' and created_at >= DATE '{{ var("as_of") }}' - INTERVAL 90 DAY
    group by user_id
) t using (user_id)
