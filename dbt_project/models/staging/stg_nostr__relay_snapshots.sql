with

source as (

    select * from {{ source('raw', 'relay_snapshots') }}

),

renamed as (

    select
        snapshot_hour,
        relay_url,
        observed_at,
        observation_source,
        dns_addresses,
        connected_ip,
        is_reachable,
        {{ recode_legacy_failure('error_class') }} as error_class,
        error_message,
        rtt_open_ms,
        rtt_read_ms,
        rtt_nip11_ms,
        nip11_status_code,
        nip11_raw,
        {{ recode_legacy_failure('nip11_error') }} as nip11_error,
        -- a document counts when one was served and kept, even if some fields were malformed
        nip11_raw is not null as has_nip11,
        relay_name,
        relay_description,
        relay_pubkey,
        relay_contact,
        software,
        software_version,
        supported_nips,
        max_limit,
        max_message_length,
        max_subscriptions,
        payment_required as is_payment_required,
        auth_required as is_auth_required,
        restricted_writes as has_restricted_writes,
        reads_without_auth as is_read_without_auth_observed,
        requires_auth_for_read as is_auth_for_read_observed,
        answers_count as is_count_observed,
        answers_negentropy as is_negentropy_observed

    from source

)

select * from renamed
