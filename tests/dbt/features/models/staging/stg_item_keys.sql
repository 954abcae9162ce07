select
    {{ my_utils.surrogate_key(['item', 'sold_on']) }} as item_key,
    item,
    sold_on
from {{ ref('stg_items') }}
