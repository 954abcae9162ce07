{{ config(unique_key=['id'], incremental_strategy='merge') }}
select id, kind || '{{ "-v2" if var("v2", false) else "" }}' as kind, amount
from {{ ref('events') }}
{% if is_incremental() %}where id % 2 = 0{% endif %}
