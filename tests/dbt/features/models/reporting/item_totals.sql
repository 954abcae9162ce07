select
    item,
    sum(qty) as total_qty,
    sum(revenue) as total_revenue,
    count(distinct sold_on) as days
from {{ ref('stg_items') }}
group by item
