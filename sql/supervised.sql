-- Supervised models (SQL_SURFACE.md section 2): one generic train / predict / explain entry each,
-- and the churn, conversion and click-through macros on top of them (shortcut := names the macro, whose
-- yes/no label ml_train then checks).
CREATE OR REPLACE TEMP MACRO ml_train(model, relation, label := NULL, task := 'auto', algorithm := 'auto',
                                      exclude := NULL, test_size := 0.2, params := NULL,
                                      user := NULL, item := NULL, weight := NULL, time := NULL, method := NULL,
                                      k := NULL, personal := NULL, deploy := 'if_better', shortcut := NULL) AS TABLE
    SELECT unnest(wml_train(model, relation, json_object(
        'label', label, 'task', task, 'algorithm', algorithm, 'exclude', exclude, 'test_size', test_size,
        'params', params, 'user', user, 'item', item, 'weight', weight, 'time', time, 'method', method,
        'k', k, 'personal', personal, 'deploy', deploy, 'shortcut', shortcut)), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_predict(model, row) AS wml_predict(model, row);
-- The label comes back with the label column's type: cast_to_type takes it from a bind-time witness query
-- (so the model must be a constant; wml_predict_label(model, row) gives the text form for any model argument).
CREATE OR REPLACE TEMP MACRO ml_predict_label(model, row) AS
    cast_to_type(wml_predict_label(model, row), (SELECT w FROM query(wml_label_type_sql(model))));
CREATE OR REPLACE TEMP MACRO ml_explain_row(model, row, k := 3) AS wml_explain_row(model, row, k);

CREATE OR REPLACE TEMP MACRO ml_evaluate(model, relation := NULL) AS TABLE
    SELECT unnest(wml_evaluate(model, relation), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_explain(model) AS TABLE
    SELECT unnest(wml_explain(model), recursive := true);

-- deploy := 'if_better' (default) activates a new version only when it scores at least as well as the active
-- one on the new hold-out; 'always' activates it; 'never' only stores it (ml_deploy activates it later).
-- Churn: the model named 'churn'.
CREATE OR REPLACE TEMP MACRO train_churn(relation, label := 'churned', algorithm := 'auto', exclude := NULL,
                                         test_size := 0.2, params := NULL, deploy := 'if_better') AS TABLE
    FROM ml_train('churn', relation, label := label, task := 'classification', algorithm := algorithm,
                  exclude := exclude, test_size := test_size, params := params, deploy := deploy,
                  shortcut := 'train_churn');
CREATE OR REPLACE TEMP MACRO predict_churn(row) AS wml_predict('churn', row);

-- Purchase conversion: the model named 'conversion'.
CREATE OR REPLACE TEMP MACRO train_conversion(relation, label := 'converted', algorithm := 'auto', exclude := NULL,
                                              test_size := 0.2, params := NULL, deploy := 'if_better') AS TABLE
    FROM ml_train('conversion', relation, label := label, task := 'classification', algorithm := algorithm,
                  exclude := exclude, test_size := test_size, params := params, deploy := deploy,
                  shortcut := 'train_conversion');
CREATE OR REPLACE TEMP MACRO predict_conversion(row) AS wml_predict('conversion', row);

-- Click-through: the model named 'ctr'.
CREATE OR REPLACE TEMP MACRO train_ctr(relation, label := 'clicked', algorithm := 'auto', exclude := NULL,
                                       test_size := 0.2, params := NULL, deploy := 'if_better') AS TABLE
    FROM ml_train('ctr', relation, label := label, task := 'classification', algorithm := algorithm,
                  exclude := exclude, test_size := test_size, params := params, deploy := deploy,
                  shortcut := 'train_ctr');
CREATE OR REPLACE TEMP MACRO predict_ctr(row) AS wml_predict('ctr', row);

-- A linear model as a plain SQL macro definition: scoring with no Python, by any DuckDB client.
CREATE OR REPLACE TEMP MACRO ml_export_sql(model) AS TABLE
    SELECT unnest(wml_export_sql(model), recursive := true);
