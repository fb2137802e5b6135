-- Retrain only when needed: a drift check (recorded), then a new version trained with the active version's
-- settings when a feature drifted or the metric decayed past the threshold; deployed only if it scores at
-- least as well as the active version (deploy := 'if_better').
-- depends_on: {{ ref('churn_drift') }}
select model, retrained, reason, version, active_version, metrics['roc_auc'] as roc_auc
from ml_retrain('churn', '{{ ref("user_features") }}', "when" := 'drift', threshold := {psi: {{ var("psi_threshold") }}})
