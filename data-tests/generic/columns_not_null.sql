{#-
    The not_null tests of one relation in one query: fails with one row per column
    that holds a null (of the columns whose not_null test fails the build and has
    no `where`), with the count. The ten-minute cycle runs this in place of one node
    per column (selectors.yml), because dbt's cost is per node, not per row. The
    columns are read from those not_null tests, so the two cannot disagree; the full
    build runs both.
-#}
{% test columns_not_null(model) %}

    {%- set columns = [] -%}
    {%- if execute -%}
        {%- for test in graph.nodes.values()
            if test.resource_type == 'test'
            and (test.test_metadata or {}).get('name') == 'not_null'
            and test.config.severity | lower == 'error'
            and not test.config.where -%}
            {#- dbt sets attached_node for tests on models and snapshots, not sources -#}
            {%- set tested = test.attached_node or test.depends_on.nodes | first -%}
            {%- set attached = graph.nodes.get(tested) or graph.sources.get(tested) -%}
            {%- if attached and attached.relation_name == (model | string) -%}
                {%- do columns.append(test.test_metadata.kwargs.column_name) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if not columns -%}
            {{ exceptions.raise_compiler_error(
                "columns_not_null on " ~ model ~ ": no not_null test on it to combine"
            ) }}
        {%- endif -%}
    {%- endif -%}

    with null_counts as (
        select
        {% for column in columns | sort -%}
            count(*) filter (where {{ column }} is null) as nulls_{{ loop.index }}
            {{- "," if not loop.last }}
        {%- endfor %}
        from {{ model }}
    )

    select
        checked.column_name,
        checked.null_rows
    from null_counts
    cross join lateral (
        values
        {% for column in columns | sort -%}
            ('{{ column }}', nulls_{{ loop.index }}) {{- "," if not loop.last }}
        {%- endfor %}
    ) as checked (column_name, null_rows)
    where checked.null_rows > 0

{% endtest %}
