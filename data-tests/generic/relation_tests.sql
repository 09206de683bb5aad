{#-
    Every other data test of one relation in one query: fails with one row per test
    that fails, naming it, with its count of failing rows. The ten-minute cycle runs
    this in place of those tests (selectors.yml), because dbt's cost is per node, not
    per row: its build ran 57 nodes, most of them tests of a few milliseconds of SQL.
    The full build runs both.

    Which tests: the generic tests attached to this relation that fail the build
    (severity error). Each is compiled here by calling its own test macro with its
    own arguments and `where` (relation_tests_check), so the two cannot disagree. A
    test this cannot reproduce stops the compile, naming it.
-#}
{% test relation_tests(model) %}

    {%- set checks = [] -%}
    {%- if execute -%}
        {%- for test in graph.nodes.values()
            if test.resource_type == 'test'
            and test.test_metadata
            and test.test_metadata.name != 'relation_tests'
            and test.config.severity | lower == 'error' -%}
            {%- set check = relation_tests_check(test, model) -%}
            {%- if check -%}
                {%- do checks.append(check) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if not checks -%}
            {{ exceptions.raise_compiler_error(
                "relation_tests on " ~ model ~ ": no other test on it to combine"
            ) }}
        {%- endif -%}
    {%- endif -%}

    {% for name, sql in checks | sort -%}
        select
            '{{ name }}' as test_name,
            count(*) as failing_rows
        from (
            {{ sql }}
        ) as failures
        having count(*) > 0
        {{ "union all" if not loop.last }}
    {% endfor %}

{% endtest %}
