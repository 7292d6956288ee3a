-- Hourly partition of relay health. Trailing uptime needs the 7 days before the window's
-- first hour, so snapshots are read with a 167-hour lookback; only the window's hours are kept.
-- Window replace: see fct_events_hourly (pre_hook delete of the window, then append).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        tags=['hourly'],
        pre_hook="{{ delete_window('snapshot_hour') }}",
    )
}}

with

snapshots as (

    select
        snapshot_hour,
        relay_url,
        is_reachable,
        rtt_open_ms,
        rtt_read_ms

    from {{ ref('stg_nostr__relay_snapshots') }}
    where {{ window_predicate('snapshot_hour', lookback_hours=167) }}

),

with_uptime as (

    -- uptime = reachable snapshots / snapshots taken in the trailing 24 h and 7 d, current hour
    -- included; hours without a snapshot are unknown, not down, so they are not counted.
    select
        *,
        avg(is_reachable::integer) over last_24h as uptime_24h,
        count(*) over last_24h as snapshots_24h,
        avg(is_reachable::integer) over last_7d as uptime_7d,
        count(*) over last_7d as snapshots_7d

    from snapshots
    window
        last_24h as (
            partition by relay_url order by snapshot_hour
            range between interval '23 hours' preceding and current row
        ),
        last_7d as (
            partition by relay_url order by snapshot_hour
            range between interval '167 hours' preceding and current row
        )

),

final as (

    select
        snapshot_hour,
        relay_url,
        is_reachable,
        rtt_open_ms,
        rtt_read_ms,
        uptime_24h,
        snapshots_24h,
        uptime_7d,
        snapshots_7d

    from with_uptime
    where {{ window_predicate('snapshot_hour') }}

)

select * from final
