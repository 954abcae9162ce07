select
    event_id,
    user_id,
    event_type,
    event_at,
    cast(event_at as date) as event_date,
    page,
    feature,
    device
from {{ source('saas', 'events') }}
