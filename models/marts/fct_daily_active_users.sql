{{ config(materialized='table') }}

select
    event_date,
    count(distinct user_id) as active_users,
    count(distinct session_id) as sessions,
    count(*) as total_events,
    count(case when event_type = 'page_view' then 1 end) as page_views,
    count(case when event_type = 'login' then 1 end) as logins,
    count(case when event_type = 'feature_used' then 1 end) as feature_uses,
    count(case when event_type = 'signup' then 1 end) as signups,
    count(case when event_type = 'upgrade' then 1 end) as upgrades,
    count(case when event_type = 'downgrade' then 1 end) as downgrades
from {{ ref('int_user_events_sessionized') }}
group by event_date
