-- Experiments (SQL_SURFACE.md section 6): one row per variant compared with the control.
CREATE OR REPLACE TEMP MACRO ab_test(relation, variant := NULL, metric := NULL, control := NULL,
                                     covariate := NULL, alpha := 0.05, split := NULL, test := 'auto',
                                     epsilon := NULL, bounds := NULL) AS TABLE
    SELECT unnest(wml_ab_test(relation, json_object(
        'variant', variant, 'metric', metric, 'control', control, 'covariate', covariate, 'alpha', alpha,
        'split', split, 'test', test, 'epsilon', epsilon, 'bounds', bounds)), recursive := true);

-- Users per variant to detect an absolute change of min_detectable_effect from baseline (two-sided test).
CREATE OR REPLACE TEMP MACRO ab_sample_size(baseline, min_detectable_effect, alpha := 0.05, power := 0.8) AS
    wml_ab_sample_size(CAST(baseline AS DOUBLE), CAST(min_detectable_effect AS DOUBLE), CAST(alpha AS DOUBLE),
                       CAST(power AS DOUBLE));
