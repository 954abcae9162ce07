{{ config(pre_hook="create or replace table {{ target.database }}.main.people_pre as select 'people' as model") }}
{{ dbt_utils.union_relations(relations=[ref('customers'), ref('staff')]) }}
