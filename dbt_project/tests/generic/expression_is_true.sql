{#- Every row satisfies `expression` (an invariant such as relay_count >= 1). -#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
