-- Fails (returns rows) when today's check found a feature, the predictions or the model's metric past its
-- threshold: the signal to look at churn_drift's notes before trusting churn_scores.
select feature, kind, statistic, value, threshold, note from {{ ref('churn_drift') }} where drifted
