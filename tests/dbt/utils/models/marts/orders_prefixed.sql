select {{ dbt_utils.star(ref('stg_orders'), relation_alias='o', prefix='o_', except=['order_key']) }}
from {{ ref('stg_orders') }} as o
