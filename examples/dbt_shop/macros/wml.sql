{# True when the connection has a warehouse-ml function or macro of this name (at run time). #}
{% macro wml_has_function(name) %}
  {% if not execute %}{{ return(true) }}{% endif %}
  {% set result = run_query("select count(*) from duckdb_functions() where function_name = " ~ dbt.string_literal(name)) %}
  {{ return(result.columns[0].values()[0] > 0) }}
{% endmacro %}

{# Training as a run-operation instead of a model:
     dbt run-operation wml_train_churn --args '{relation: user_features, algorithm: gbm}' --profiles-dir .
   trains a new version of the model 'churn' and logs the summary. #}
{% macro wml_train_churn(relation='user_features', algorithm='logistic') %}
  {% set rel = ref(relation) %}
  {% set sql %}
    select model, version, algorithm, n_train, metrics['roc_auc'] as roc_auc
    from train_churn({{ dbt.string_literal(rel | string) }}, algorithm := {{ dbt.string_literal(algorithm) }})
  {% endset %}
  {% set result = run_query(sql) %}
  {% for row in result.rows %}
    {{ log("trained " ~ row[0] ~ " version " ~ row[1] ~ " (" ~ row[2] ~ ", " ~ row[3] ~ " rows, roc_auc " ~ row[4] ~ ")", info=True) }}
  {% endfor %}
{% endmacro %}
