-- Churn probability for every user, from the model 'churn' trained in DuckDB. DuckDB: predict_churn(f).
select user_id, predict_churn(struct(*)) as p_churn
from {{ source("shop", "user_features") }}
