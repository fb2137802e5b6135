-- Keeping models right (SQL_SURFACE.md section 10). Python: warehouse_ml/functions/monitor.py.
-- threshold: a number for every distribution statistic, or a struct naming some of psi (default 0.2),
-- jensen_shannon (0.1), ks (0.05, a p-value), chi_square (0.05, a p-value) and decay (0.1: the model's main
-- metric 10% worse than on its training hold-out). numeric := 'psi' | 'ks'; categorical := 'jensen_shannon' |
-- 'chi_square'. record := false leaves the monitoring history untouched.
CREATE OR REPLACE TEMP MACRO ml_drift(model, relation, threshold := NULL, numeric := 'psi',
                                      categorical := 'jensen_shannon', record := true) AS TABLE
    SELECT unnest(wml_drift(model, relation, json_object('threshold', threshold, 'numeric', numeric,
        'categorical', categorical, 'record', record)), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_monitoring(model) AS TABLE
    SELECT unnest(wml_monitoring(model), recursive := true);
