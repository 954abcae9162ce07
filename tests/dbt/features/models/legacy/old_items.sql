select * from {{ ref('stg_items') }} where false
