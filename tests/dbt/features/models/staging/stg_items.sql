select
    item,
    qty,
    price,
    qty * price as revenue,
    sold_on
from {{ ref('items') }}
