{{ config(on_schema_change='fail') }}
select id, upper(kind) as kind
from {{ ref('events') }}
{% if is_incremental() %}where id > 4{% endif %}
