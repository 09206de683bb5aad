{#-
    For relation_tests: (the test's name, its SQL) when `test` is attached to
    `model`, what dbt would run for that test node (on a snapshot: on the rows
    snapshot_rows_since_tested keeps); none for a test of another relation.
-#}
{% macro relation_tests_check(test, model) %}
    {%- set arguments = {} -%}
    {%- for key, value in test.test_metadata.kwargs.items() if key != 'model' -%}
        {%- do arguments.update({key: value}) -%}
    {%- endfor -%}
    {%- set depends_on = test.depends_on.nodes -%}
    {%- set tested = test.attached_node -%}
    {%- set parent = none -%}
    {%- if test.test_metadata.name == 'relationships' -%}
        {#- It reads a second relation (`to`, as written: ref(...) or source(...)). -#}
        {%- set parent = relation_tests_parent(test, arguments.to) -%}
        {%- set tested = tested or (depends_on | reject('equalto', parent) | first) -%}
    {%- endif -%}
    {#- dbt sets attached_node for tests on models and snapshots, not sources -#}
    {%- set tested = tested or depends_on | first -%}
    {%- set attached = graph.nodes.get(tested) or graph.sources.get(tested) -%}
    {%- if not attached or attached.relation_name != (model | string) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if parent -%}
        {#- It must exist before this test runs: a source, or a relation the tested
            one is built from (this test depends on the tested relation only). -#}
        {%- set parent_node = graph.sources.get(parent) or graph.nodes.get(parent) -%}
        {%- if parent_node.resource_type != 'source'
            and parent not in attached.depends_on.nodes -%}
            {{ exceptions.raise_compiler_error(
                "relation_tests cannot combine " ~ test.name ~ ": " ~ tested
                ~ " is not built from " ~ parent
            ) }}
        {%- endif -%}
        {%- do arguments.update({'to': parent_node.relation_name}) -%}
    {%- endif -%}

    {%- set config = test.config -%}
    {%- if config.fail_calc != 'count(*)' or config.error_if != '!= 0'
        or config.limit is not none -%}
        {{ exceptions.raise_compiler_error(
            "relation_tests cannot combine " ~ test.name
            ~ ": it has a fail_calc, error_if or limit of its own"
        ) }}
    {%- endif -%}
    {%- for key, value in arguments.items()
        if value is string and ('{{' in value or value.startswith(('ref(', 'source('))) -%}
        {{ exceptions.raise_compiler_error(
            "relation_tests cannot combine " ~ test.name ~ ": its argument " ~ key
            ~ " is an expression (" ~ value ~ ")"
        ) }}
    {%- endfor -%}
    {#- As dbt's get_where_subquery: the test sees only the rows `where` keeps. -#}
    {%- set rows = model -%}
    {%- if config.where -%}
        {%- set rows = "(select * from " ~ model ~ " where " ~ config.where
            ~ ") as dbt_subquery" -%}
    {%- endif -%}
    {%- if attached.resource_type == 'snapshot' -%}
        {%- set rows = snapshot_rows_since_tested(
            model, rows, attached.config.unique_key
        ) -%}
    {%- endif -%}
    {%- set namespace = test.test_metadata.namespace -%}
    {%- set macros = context[namespace] if namespace else context -%}
    {%- set test_macro = macros['test_' ~ test.test_metadata.name] -%}
    {{ return((test.name, test_macro(model=rows, **arguments))) }}
{% endmacro %}


{#- The unique id of the node a relationships test's `to` names. -#}
{% macro relation_tests_parent(test, to) %}
    {%- set wanted = to | replace('"', "'") | replace(' ', '') -%}
    {%- for unique_id in test.depends_on.nodes -%}
        {%- set node = graph.sources.get(unique_id) or graph.nodes.get(unique_id) -%}
        {%- if node.resource_type == 'source' -%}
            {%- set written = "source('" ~ node.source_name ~ "','" ~ node.name ~ "')" -%}
        {%- else -%}
            {%- set written = "ref('" ~ node.name ~ "')" -%}
        {%- endif -%}
        {%- if written == wanted -%}
            {{ return(unique_id) }}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error(
        "relation_tests cannot combine " ~ test.name ~ ": its `to` (" ~ to
        ~ ") is none of the nodes it depends on"
    ) }}
{% endmacro %}
