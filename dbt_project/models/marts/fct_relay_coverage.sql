with

sightings as (

    select * from {{ ref('stg_nostr__event_relay_sightings') }}

),

events as (

    select
        event_id,
        relay_count

    from {{ ref('int_events_deduplicated') }}

),

total as (

    select count(*) as total_events from events

),

final as (

    select
        sightings.relay_url,
        count(*) as events_held,
        count(*) / any_value(total.total_events) as share_of_events,
        count(*) filter (where events.relay_count = 1) as exclusive_events

    from sightings
    inner join events on events.event_id = sightings.event_id
    cross join total
    group by sightings.relay_url

)

select * from final
