{{ config(materialized='table') }}

select
    i.invoice_date,
    i.plan,
    u.country,
    i.status,
    count(*) as invoice_count,
    sum(i.amount) as total_amount,
    count(distinct i.user_id) as paying_users
from {{ ref('stg_invoices') }} as i
inner join {{ ref('stg_users') }} as u on u.user_id = i.user_id
group by i.invoice_date, i.plan, u.country, i.status
