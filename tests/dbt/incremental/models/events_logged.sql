{{ config(incremental_strategy='merge') }}
select id, kind
from {{ ref('events') }}
{% if is_incremental() %}where id > 4{% endif %}
