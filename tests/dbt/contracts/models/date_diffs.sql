{#- dbt.datediff for every date part, as dbt-duckdb's date_diff() counts them. -#}
{%- set parts = ['year', 'quarter', 'month', 'week', 'day', 'hour', 'minute', 'second', 'millisecond', 'microsecond'] -%}
with pairs as (
    select * from (values
        (1, timestamp '2023-12-31 23:59:59.999999', timestamp '2024-01-01 00:00:00'),
        (2, timestamp '1969-12-31 23:30:00.5', timestamp '1970-01-01 00:10:00.2'),
        (3, timestamp '2024-03-31 10:00:00', timestamp '2023-01-15 11:30:45.123'),
        (4, timestamp '2024-02-29 00:00:00', timestamp '2024-02-29 00:00:00'),
        (5, timestamp '2020-06-15 08:00:00', timestamp '2024-11-03 17:45:12.00025'),
        (6, timestamp '1969-12-31 10:00:00', timestamp '1969-12-20 09:00:00'),
        (7, timestamp '2024-04-06 10:00:00', timestamp '2024-04-13 09:00:00')
    ) as t(id, a, b)
)
select
    id,
{%- for p in parts %}
    {{ dbt.datediff('a', 'b', p) }} as {{ p }}_diff,
{%- endfor %}
    {{ dbt.datediff('a', 'b', 'weeks') }} as weeks_diff,
    {{ dbt.datediff("date '2024-01-01'", "date '2025-03-01'", 'months') }} as months_of_dates
from pairs
