{{ config(materialized='view') }}
select customer, count(*) as orders, max(amount) as largest
from {{ ref('order_facts') }}
group by customer
