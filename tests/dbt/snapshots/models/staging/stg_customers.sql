{% set stage = var('stage', 1) | int %}
select
    id,
    name,
    case when id = 2 and {{ stage }} >= 2 then 'gold' else status end as status,
    case when id = 2 and {{ stage }} >= 2 then updated_at + interval 31 day else updated_at end as updated_at
from {{ ref('customers') }}
-- stage 2 deletes customer 3, stage 3 brings it back
where not (id = 3 and {{ stage }} = 2)
{% if stage >= 2 %}
union all
select 5, 'Eve', 'silver', timestamp '2024-02-05 12:00:00'
{% endif %}
{% if stage >= 3 %}
-- a change to a column the check snapshot does not check
union all
select 6, 'Fay', null, timestamp '2024-03-01 00:00:00'
{% endif %}
