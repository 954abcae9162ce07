{% set seed = adapter.get_relation(database=this.database, schema=this.schema, identifier='items') %}
{% set columns = adapter.get_columns_in_relation(ref('items')) %}
{% set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | list %}
select
    '{{ model.package_name }}' as package_name,
    '{{ model.unique_id }}' as unique_id,
    '{{ model.resource_type }}' as resource_type,
    '{{ model.fqn | join(".") }}' as fqn,
    '{{ model.config.materialized }}' as materialized,
    {{ models | length }} as models_in_graph,
    '{{ graph.nodes["seed.ctx.items"].name }}' as seed_in_graph,
    '{{ modules.datetime.datetime(2024, 3, 9, 7, 5).strftime("%Y-%m-%d %H:%M") }}' as formatted,
    '{{ modules.datetime.date(2024, 1, 31).isoformat() }}' as iso_date,
    '{{ modules.datetime.datetime.strptime("2024-02-29", "%Y-%m-%d") }}' as parsed,
    '{{ seed.identifier if seed is not none else "none" }}' as found_seed,
    '{{ columns | map(attribute="name") | join(",") }}' as seed_columns,
    '{{ adapter.quote("qty") }}' as quoted,
    '{{ api.Relation.create(database="a", schema="b", identifier="c") }}' as created
