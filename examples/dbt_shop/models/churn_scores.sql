-- Churn probability for every user, scored by the model trained in churn_model.
-- depends_on: {{ ref('churn_model') }}
select user_id, predict_churn(f) as p_churn, recency_days, frequency, support_tickets_90d
from {{ ref('user_features') }} f
