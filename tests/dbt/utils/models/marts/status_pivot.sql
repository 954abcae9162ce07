select
    customer,
    {{ dbt_utils.pivot('status', dbt_utils.get_column_values(ref('stg_orders'), 'status', order_by='status')) }}
from {{ ref('stg_orders') }}
group by customer
