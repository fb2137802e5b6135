-- Customers and average order per acquisition channel, released with differential privacy: safe to share with
-- partners. Each customer counts once (privacy_unit), amounts are clamped to [0, 300], rare channels are
-- suppressed, and every run spends epsilon 1 of order_channels' budget (recorded in wml.dp_ledger).
select channel, metric, value, ci_low, ci_high
from dp_aggregate('{{ ref("order_channels") }}', group_by := ['channel'], metrics := ['count', 'avg(amount)'],
                  bounds := {'amount': [0, 300]}, epsilon := 1, privacy_unit := 'user_id')
