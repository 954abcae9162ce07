-- fct_revenue must account for every invoice of a known user, to the cent.
with mart as (
    select sum(total_amount) as total, sum(invoice_count) as invoices
    from {{ ref('fct_revenue') }}
),
source as (
    select sum(i.amount) as total, count(*) as invoices
    from {{ ref('stg_invoices') }} as i
    inner join {{ ref('stg_users') }} as u on u.user_id = i.user_id
)
select mart.total as mart_total, source.total as source_total
from mart cross join source
where mart.total <> source.total or mart.invoices <> source.invoices
