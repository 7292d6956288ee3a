-- What each relay claims in its NIP-11 document against what our probe saw it do, for the
-- NIPs a probe can check. Relay operators see where their document is wrong; client
-- developers see which relays really answer COUNT or negentropy.
with

probes as (

    -- our own observations only: a monitor's report observes none of these
    select
        relay_url,
        snapshot_hour,
        has_nip11,
        supported_nips,
        rtt_read_ms,
        is_read_without_auth_observed,
        is_auth_for_read_observed,
        is_count_observed,
        is_negentropy_observed

    from {{ ref('stg_nostr__relay_snapshots') }}
    where observation_source = 'probe' and is_read_without_auth_observed is not null
    qualify row_number() over (partition by relay_url order by snapshot_hour desc) = 1

),

observed as (

    select
        relay_url,
        snapshot_hour,
        has_nip11,
        supported_nips,
        -- NIP-01: the relay answered a plain REQ (events, EOSE or CLOSED: a round trip)
        rtt_read_ms is not null as nip_1,
        has_nip11 as nip_11,
        -- NIP-42: only a demand for AUTH shows it; a relay that made none is not thereby
        -- without it
        case when is_auth_for_read_observed then true end as nip_42,
        is_count_observed as nip_45,
        is_negentropy_observed as nip_77

    from probes

),

checks as (

    select
        relay_url,
        snapshot_hour,
        has_nip11,
        supported_nips,
        replace(nip_column, 'nip_', '')::integer as nip,
        observed

    from observed
    unpivot include nulls (observed for nip_column in (nip_1, nip_11, nip_42, nip_45, nip_77))

),

final as (

    select
        relay_url,
        nip,
        snapshot_hour as observed_hour,
        has_nip11,
        coalesce(list_contains(supported_nips, nip), false) as is_claimed,
        observed as is_observed,
        case
            when observed is null then 'not_tested'
            when coalesce(list_contains(supported_nips, nip), false) and observed
                then 'claimed_and_observed'
            when coalesce(list_contains(supported_nips, nip), false) then 'claimed_not_observed'
            when observed then 'observed_not_claimed'
            else 'neither'
        end as verdict

    from checks

)

select * from final
