select
    order_id,
    sum(amount) as total_amount
from {{ ref('orders') }}
group by order_id
having sum(amount) < 0
