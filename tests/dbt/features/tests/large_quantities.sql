{{ config(severity='warn') }}

select * from {{ ref('stg_items') }} where qty > 100
