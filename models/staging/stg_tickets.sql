-- resolution_hours: epoch seconds (microseconds since 1970 / 1e6, as double)
-- of resolved_at minus those of created_at, over 3600.
select
    ticket_id,
    user_id,
    created_at,
    resolved_at,
    priority,
    category,
    status,
    satisfaction_score,
    (date_part('epoch', resolved_at) - date_part('epoch', created_at)) / 3600.0 as resolution_hours,
    status in ('open', 'pending') as is_open
from {{ source('saas', 'support_tickets') }}
