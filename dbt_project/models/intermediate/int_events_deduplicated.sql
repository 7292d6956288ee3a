-- raw.nostr_events is keyed on event_id already (the crawler dedupes across relays before
-- landing); this model joins what the sightings say about each event and the NIP-09 flag,
-- so marts read one table instead of three.

with

events as (

    select * from {{ ref('stg_nostr__events') }}

),

sightings as (

    select
        event_id,
        count(*) as relay_count,
        min(first_seen_at) as first_sighted_at

    from {{ ref('stg_nostr__event_relay_sightings') }}
    group by event_id

),

deletions as (

    select * from {{ ref('int_event_deletions') }}

),

final as (

    select
        events.event_id,
        events.pubkey,
        events.kind,
        events.created_at_unix,
        events.created_at,
        events.created_hour,
        events.tags,
        events.content,
        least(events.first_seen_at, sightings.first_sighted_at) as first_seen_at,
        -- sightings are the truth; the crawler's own count covers events landed without them
        coalesce(sightings.relay_count, events.crawler_relay_count) as relay_count,
        deletions.event_id is not null as is_deleted,
        deletions.deletion_event_id,
        deletions.deleted_at

    from events
    left join sightings on sightings.event_id = events.event_id
    left join deletions on deletions.event_id = events.event_id

)

select * from final
