select
    {{ dbt_utils.generate_surrogate_key(['id', 'customer']) }} as order_key,
    {{ dbt_utils.star(from=ref('orders'), except=['amount']) }},
    {{ dbt_utils.safe_divide('amount', 'id') }} as amount_per_id,
    amount
from {{ ref('orders') }}
