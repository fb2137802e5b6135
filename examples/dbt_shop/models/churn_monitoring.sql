-- The monitoring history of 'churn': every drift check, update and retrain so far, one row per statistic.
-- depends_on: {{ ref('churn_drift') }}
-- depends_on: {{ ref('churn_retrain') }}
select * from ml_monitoring('churn')
