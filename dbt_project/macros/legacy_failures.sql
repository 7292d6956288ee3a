{#
    Failure values landed before nostr_assets/lib/failures.py named every failure once,
    recoded to today's vocabulary so that old and new rows group together in the marts.
    Values of today pass through unchanged.
#}
{% macro recode_legacy_failure(column) %}
    case
        when {{ column }} = 'timeout' then 'timeout_total'
        when {{ column }} = 'tls_error' then 'tls_failed'
        when {{ column }} in ('connect_error', 'http_error') then 'os_error'
        when {{ column }} = 'dns_timeout' then 'dns_failed'
        when regexp_matches({{ column }}, '^http_[0-9]+$') then 'http_status'
        when {{ column }} like 'refused:%' then 'refused_address'
        when {{ column }} like 'invalid_url:%' or {{ column }} like 'invalid:%'
            then 'invalid_url'
        else {{ column }}
    end
{% endmacro %}
