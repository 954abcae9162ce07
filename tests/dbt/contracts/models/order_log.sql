{{ config(materialized='incremental', unique_key='id', on_schema_change='append_new_columns') }}
select id, ordered_on
from {{ ref('orders') }}
{% if is_incremental() %}where id > 2{% endif %}
