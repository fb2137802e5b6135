-- Training as a model: each `dbt run` trains a version of the model 'churn' (stored in schema wml of this
-- database) and materialises the training summary. The new version becomes active only when it scores at
-- least as well as the active one on the same fresh hold-out (deploy := 'if_better', the default), so a run
-- never replaces a better model with a worse one; `is_active` and the last note say what happened.
-- algorithm := 'logistic' keeps it quick and lets scoring compile to plain SQL; use 'auto' to choose by
-- cross-validation.
select t.model, t.version, t.algorithm, t.n_train, t.n_test,
       t.metrics['roc_auc'] as roc_auc, t.metrics['accuracy'] as accuracy, t.trained_at,
       t.notes[-1] as deploy_decision
from train_churn('{{ ref("user_features") }}', algorithm := 'logistic', deploy := 'if_better') t
