select
    ordered_on,
    id,
    coalesce(customer, 'unknown') as customer,
    cast(amount as decimal(10, 2)) as amount,
    amount > 5 as is_large
from {{ ref('orders') }}
