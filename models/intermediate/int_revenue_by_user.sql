-- One row per user with at least one invoice.
select
    user_id,
    count(*) as invoice_count,
    count(case when is_paid then 1 end) as paid_invoice_count,
    coalesce(sum(case when is_paid then amount end), cast(0 as decimal(12, 2))) as lifetime_revenue,
    min(issued_at) as first_invoice_at,
    max(issued_at) as last_invoice_at
from {{ ref('stg_invoices') }}
group by user_id
