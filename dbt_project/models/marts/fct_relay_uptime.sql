-- Each relay's uptime history from our own hourly probes. Uptime is over the hours observed:
-- an hour without a snapshot is unknown, not down. The windows end at the latest snapshot hour
-- in the warehouse, not at the wall clock, so a rebuild from the same raw data gives the same
-- numbers. NIP-66 rows are left out: monitors report only relays they found online.
with

probes as (

    select
        relay_url,
        snapshot_hour,
        observed_at,
        is_reachable

    from {{ ref('stg_nostr__relay_snapshots') }}
    where observation_source = 'probe'

),

as_of as (

    select max(snapshot_hour) as as_of_hour from probes

),

runs as (

    -- gaps and islands: consecutive snapshots of one reachability share a run id
    select
        relay_url,
        snapshot_hour,
        is_reachable,
        row_number() over (partition by relay_url order by snapshot_hour)
        - row_number() over (
            partition by relay_url, is_reachable order by snapshot_hour
        ) as run_id

    from probes

),

outages as (

    select
        relay_url,
        max(snapshots_down) as longest_outage_hours

    from (
        select
            relay_url,
            run_id,
            count(*) as snapshots_down
        from runs
        where not is_reachable
        group by relay_url, run_id
    ) as down_runs
    group by relay_url

),

history as (

    select
        probes.relay_url,
        min(probes.observed_at) as first_seen_at,
        max(probes.observed_at) as last_seen_at,
        max(probes.snapshot_hour) filter (where probes.is_reachable) as last_reachable_hour,
        count(*) as hours_observed,
        count(*) filter (where probes.is_reachable) as hours_reachable,
        avg(probes.is_reachable::integer) filter (
            where probes.snapshot_hour > as_of.as_of_hour - interval '24 hours'
        ) as uptime_24h,
        avg(probes.is_reachable::integer) filter (
            where probes.snapshot_hour > as_of.as_of_hour - interval '7 days'
        ) as uptime_7d,
        avg(probes.is_reachable::integer) filter (
            where probes.snapshot_hour > as_of.as_of_hour - interval '30 days'
        ) as uptime_30d,
        as_of.as_of_hour

    from probes
    cross join as_of
    group by probes.relay_url, as_of.as_of_hour

),

final as (

    select
        history.relay_url,
        history.first_seen_at,
        history.last_seen_at,
        history.last_reachable_hour,
        history.hours_observed,
        history.hours_reachable,
        history.uptime_24h,
        history.uptime_7d,
        history.uptime_30d,
        coalesce(outages.longest_outage_hours, 0) as longest_outage_hours,
        history.as_of_hour

    from history
    left join outages on outages.relay_url = history.relay_url

)

select * from final
