select
    invoice_id,
    user_id,
    issued_at,
    cast(issued_at as date) as invoice_date,
    amount,
    currency,
    plan,
    status,
    status = 'paid' as is_paid
from {{ source('saas', 'invoices') }}
