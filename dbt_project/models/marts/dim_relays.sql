with

catalog as (

    select * from {{ ref('stg_nostr__relay_catalog') }}

),

snapshots as (

    select * from {{ ref('stg_nostr__relay_snapshots') }}

),

geolocations as (

    select * from {{ ref('stg_nostr__relay_geolocations') }}

),

relays as (

    -- a snapshot of a relay missing from the catalog still describes a relay
    select relay_url from catalog
    union
    select relay_url from snapshots

),

snapshot_span as (

    select
        relay_url,
        -- observed_at, not snapshot_hour: the hour label precedes the observation, and a relay
        -- probed now must not look known since the start of the hour before.
        min(observed_at) as first_observed_at,
        max(observed_at) as last_observed_at,
        max(snapshot_hour) filter (where is_reachable) as last_reachable_hour

    from snapshots
    group by relay_url

),

latest_snapshot as (

    select * from snapshots
    qualify row_number() over (partition by relay_url order by snapshot_hour desc) = 1

),

-- NIP-11 fields come from the latest snapshot that had a document: a relay that failed to
-- serve it this hour has not changed software.
latest_nip11 as (

    select * from snapshots
    where has_nip11
    qualify row_number() over (partition by relay_url order by snapshot_hour desc) = 1

),

latest_geolocation as (

    select * from geolocations
    qualify row_number() over (partition by relay_url order by snapshot_hour desc) = 1

),

final as (

    select
        relays.relay_url,
        catalog.discovery_source,
        coalesce(catalog.is_guarded, false) as is_guarded,
        latest_snapshot.snapshot_hour as latest_snapshot_hour,
        latest_snapshot.is_reachable,
        latest_snapshot.error_class as latest_error_class,
        latest_snapshot.rtt_open_ms as latest_rtt_open_ms,
        latest_snapshot.rtt_read_ms as latest_rtt_read_ms,
        latest_nip11.relay_url is not null as has_nip11,
        latest_nip11.snapshot_hour as latest_nip11_hour,
        latest_nip11.relay_name,
        latest_nip11.software,
        latest_nip11.software_version,
        latest_nip11.supported_nips,
        latest_nip11.is_payment_required,
        latest_nip11.is_auth_required,
        latest_nip11.has_restricted_writes,
        latest_geolocation.ip as latest_ip,
        latest_geolocation.country_code,
        latest_geolocation.country_name,
        latest_geolocation.city,
        latest_geolocation.latitude,
        latest_geolocation.longitude,
        latest_geolocation.asn,
        latest_geolocation.as_organization,
        least(catalog.first_seen_at, snapshot_span.first_observed_at) as first_seen_at,
        greatest(catalog.last_seen_at, snapshot_span.last_observed_at) as last_seen_at,
        snapshot_span.last_reachable_hour

    from relays
    left join catalog on catalog.relay_url = relays.relay_url
    left join snapshot_span on snapshot_span.relay_url = relays.relay_url
    left join latest_snapshot on latest_snapshot.relay_url = relays.relay_url
    left join latest_nip11 on latest_nip11.relay_url = relays.relay_url
    left join latest_geolocation on latest_geolocation.relay_url = relays.relay_url

)

select * from final
