-- Training as a model: each `dbt run` trains a new version of the model 'churn' (stored in schema wml of
-- this database) and materialises the training summary. algorithm := 'logistic' keeps it quick and lets
-- scoring compile to plain SQL; use 'auto' to choose by cross-validation.
select model, version, algorithm, n_train, n_test,
       metrics['roc_auc'] as roc_auc, metrics['accuracy'] as accuracy, trained_at
from train_churn('{{ ref("user_features") }}', algorithm := 'logistic')
