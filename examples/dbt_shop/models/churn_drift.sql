-- Daily monitoring: today's features against the snapshot kept when the active 'churn' version was trained
-- (kind 'skew') and against the previous check (kind 'drift'), plus the prediction distribution and, as the
-- relation holds the label, the model's ROC AUC (kind 'decay'). Each run also appends the check to the
-- monitoring history (FROM ml_monitoring('churn')). The test churn_has_not_drifted fails when a row drifted.
-- depends_on: {{ ref('churn_model') }}
select feature, kind, statistic, value, threshold, drifted, note, version, check_id, checked_at
from ml_drift('churn', '{{ ref("user_features") }}', threshold := {psi: {{ var("psi_threshold") }}})
