-- Hourly partition of the events mart. The window's rows are deleted by the pre_hook and
-- appended again (rather than delete+insert keyed on hour/kind, which would keep a (hour, kind)
-- row whose events vanished on a re-crawl). The source is filtered by the same window, so the
-- cost of a run follows the window, not the history: raw rows arrive in created_hour order and
-- DuckDB's zone maps skip the rest.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        tags=['hourly'],
        pre_hook="{{ delete_window('event_hour') }}",
    )
}}

with

events as (

    select
        created_hour,
        kind,
        pubkey

    from {{ ref('stg_nostr__events') }}
    where {{ window_predicate('created_hour') }}

),

final as (

    select
        created_hour as event_hour,
        kind,
        count(*) as events,
        count(distinct pubkey) as distinct_authors

    from events
    group by created_hour, kind

)

select * from final
