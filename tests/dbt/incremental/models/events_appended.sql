{{ config(unique_key='id', incremental_strategy='merge', on_schema_change='append_new_columns') }}
select
    id,
    kind{% if var('v2', false) %},
    amount + id as bumped{% endif %}
from {{ ref('events') }}
{% if is_incremental() %}where id >= 3{% endif %}
