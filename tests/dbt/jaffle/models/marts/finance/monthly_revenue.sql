select
    {{ dbt.date_trunc('month', 'order_date') }} as order_month,
    {{ dbt.hash('max(order_date)') }} as last_date_hash,
    {{ dbt.concat(["'orders: '", "cast(count(*) as " ~ dbt.type_string() ~ ")"]) }} as label,
    {{ dbt.safe_cast('sum(amount)', dbt.type_bigint()) }} as revenue
from {{ ref('orders') }}
group by 1
