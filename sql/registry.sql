-- The model registry (SQL_SURFACE.md section 3). Models live in schema wml of this database.
CREATE OR REPLACE TEMP MACRO ml_models() AS TABLE
    SELECT unnest(wml_models(), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_deploy(model, version) AS TABLE
    SELECT unnest(wml_deploy(model, version), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_rollback(model) AS TABLE
    SELECT unnest(wml_rollback(model), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_drop(model) AS TABLE
    SELECT unnest(wml_drop(model), recursive := true);

-- ml_export / ml_import: a model's active version as a Parquet file of safe artifacts (path/models.parquet; a
-- second export to the same folder adds or replaces that model's row), read by Spark and by ml_import elsewhere.
CREATE OR REPLACE TEMP MACRO ml_export(model, path) AS TABLE
    SELECT unnest(wml_export(model, path), recursive := true);

CREATE OR REPLACE TEMP MACRO ml_import(path, model := NULL) AS TABLE
    SELECT unnest(wml_import(path, model), recursive := true);
