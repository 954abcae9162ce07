{% snapshot customers_check %}
    {{
        config(
          strategy='check',
          check_cols=['status'],
          invalidate_hard_deletes=True,
        )
    }}
    select id, name, status from {{ ref('stg_customers') }}
{% endsnapshot %}
