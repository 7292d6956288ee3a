{#- NIP-01 kind classes and the `d` tag that keys addressable events, in one place. -#}

{% macro is_replaceable_kind(kind) -%}
    ({{ kind }} in (0, 3) or {{ kind }} between 10000 and 19999)
{%- endmacro %}

{% macro is_addressable_kind(kind) -%}
    ({{ kind }} between 30000 and 39999)
{%- endmacro %}

{#- The first `d` tag's value of an addressable event ('' when it has none); '' otherwise. -#}
{% macro d_tag(kind, tags) -%}
    case
        when {{ is_addressable_kind(kind) }}
            then coalesce(list_filter({{ tags }}, t -> t[1] = 'd')[1][2], '')
        else ''
    end
{%- endmacro %}
