-- Each order with its customer's acquisition channel: the input of the private report below.
select o.user_id, u.channel, o.amount
from {{ source('shop', 'orders') }} o
join {{ source('shop', 'users') }} u using (user_id)
