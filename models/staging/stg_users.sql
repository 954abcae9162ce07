-- One row per user: the version with the greatest updated_at, ties broken by
-- the greatest load id, then the greatest row id. Emails are normalised.
with ranked as (
    select
        user_id,
        lower(trim(email)) as email,
        full_name,
        country,
        plan,
        signup_at,
        is_active,
        updated_at,
        row_number() over (
            partition by user_id
            order by updated_at desc nulls last,
                     _lakeq_load_id desc nulls last,
                     _lakeq_id desc nulls last
        ) as version_rank
    from {{ source('saas', 'users') }}
)
select user_id, email, full_name, country, plan, signup_at, is_active, updated_at
from ranked
where version_rank = 1
