-- The model registry (SQL_SURFACE.md section 3). Models live in schema wml of this database.
CREATE OR REPLACE TEMP MACRO ml_models() AS TABLE
    SELECT unnest(wml_models(), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_deploy(model, version) AS TABLE
    SELECT unnest(wml_deploy(model, version), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_rollback(model) AS TABLE
    SELECT unnest(wml_rollback(model), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_drop(model) AS TABLE
    SELECT unnest(wml_drop(model), recursive := true);
