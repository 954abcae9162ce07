-- A session starts at a user's first event and whenever the gap to the user's
-- previous event (ordered by event_at, event_id) is more than 1,800 seconds.
with ordered as (
    select
        event_id,
        user_id,
        event_type,
        event_at,
        event_date,
        lag(event_at) over (partition by user_id order by event_at, event_id) as previous_event_at
    from {{ ref('stg_events') }}
),

flagged as (
    select
        *,
        case
            when previous_event_at is null then 1
            when event_at > previous_event_at + interval '1800 seconds' then 1
            else 0
        end as is_session_start
    from ordered
),

numbered as (
    select
        *,
        cast(sum(is_session_start) over (
            partition by user_id
            order by event_at, event_id
            rows between unbounded preceding and current row
        ) as bigint) as session_number
    from flagged
)

select
    event_id,
    user_id,
    event_type,
    event_at,
    event_date,
    session_number,
    cast(user_id as varchar) || '-' || cast(session_number as varchar) as session_id
from numbered
