select id, name, status, dbt_valid_from
from {{ ref('customers_ts') }}
where dbt_valid_to is null
