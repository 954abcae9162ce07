{{ config(materialized='table') }}

with revenue as (
    select user_id, lifetime_revenue, invoice_count
    from {{ ref('int_revenue_by_user') }}
),

tickets as (
    select
        user_id,
        count(*) as ticket_count,
        count(case when is_open then 1 end) as open_ticket_count,
        avg(cast(satisfaction_score as double)) as avg_satisfaction,
        avg(resolution_hours) as avg_resolution_hours
    from {{ ref('stg_tickets') }}
    group by user_id
),

activity as (
    select
        user_id,
        count(*) as total_events,
        count(distinct session_id) as total_sessions,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from {{ ref('int_user_events_sessionized') }}
    group by user_id
)

select
    u.user_id,
    u.email,
    u.full_name,
    u.country,
    u.plan,
    u.signup_at,
    u.is_active,
    coalesce(r.lifetime_revenue, cast(0 as decimal(12, 2))) as lifetime_revenue,
    coalesce(r.invoice_count, 0) as invoice_count,
    coalesce(t.ticket_count, 0) as ticket_count,
    coalesce(t.open_ticket_count, 0) as open_ticket_count,
    t.avg_satisfaction,
    t.avg_resolution_hours,
    coalesce(a.total_events, 0) as total_events,
    coalesce(a.total_sessions, 0) as total_sessions,
    a.first_event_at,
    a.last_event_at
from {{ ref('stg_users') }} as u
left join revenue as r on r.user_id = u.user_id
left join tickets as t on t.user_id = u.user_id
left join activity as a on a.user_id = u.user_id
