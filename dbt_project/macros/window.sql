{#
  The hourly window contract with Dagster: vars `window_start` / `window_end`
  ('YYYY-MM-DD HH:MM:SS', UTC, end exclusive). Without them a model covers all history.
#}

{% macro window_bounds() -%}
    {%- set start = var('window_start', none) -%}
    {%- set end = var('window_end', none) -%}
    {%- if (start is none) != (end is none) -%}
        {{ exceptions.raise_compiler_error("window_start and window_end must be given together") }}
    {%- endif -%}
    {{ return((start, end)) }}
{%- endmacro %}


{#
  Predicate keeping rows of `column` inside the window, widened `lookback_hours` into the past
  (trailing metrics need earlier rows to compute the window's first hours). `true` without vars.
#}
{% macro window_predicate(column, lookback_hours=0) -%}
    {%- set start, end = window_bounds() -%}
    {%- if start is none -%}
        true
    {%- else -%}
        ({{ column }} >= timestamptz '{{ start }}' - interval '{{ lookback_hours }} hours'
         and {{ column }} < timestamptz '{{ end }}')
    {%- endif -%}
{%- endmacro %}


{#
  pre_hook for hourly incremental models: empty the window before the append inserts it again.
  Deleting the whole window (not delete+insert on a key) also removes rows whose source rows
  vanished on a re-crawl, e.g. a kind that no longer occurs in an hour; the hook runs in the
  model's transaction, so readers never see the window half replaced.
#}
{% macro delete_window(column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ window_predicate(column) }}
    {%- endif -%}
{%- endmacro %}
