{{ config(on_schema_change='sync_all_columns') }}
select
    id{% if not var('v2', false) %},
    kind{% else %},
    amount{% endif %}
from {{ ref('events') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}) - 2{% endif %}
