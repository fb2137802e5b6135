-- What drives churn, according to the active version trained by churn_model.
-- depends_on: {{ ref('churn_model') }}
select feature, importance, direction from ml_explain('churn')
