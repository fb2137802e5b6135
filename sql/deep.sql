-- Deep models and devices (SQL_SURFACE.md section 7). algorithm := 'mlp' trains through ml_train
-- (supervised.sql); this file adds the device report.
CREATE OR REPLACE TEMP MACRO ml_device() AS wml_device();
