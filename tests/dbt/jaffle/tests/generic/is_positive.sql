{% test is_positive(model, column_name, allow_zero=false) %}

select *
from {{ model }}
where {{ column_name }} < 0
{% if not allow_zero %} or {{ column_name }} = 0 {% endif %}

{% endtest %}
