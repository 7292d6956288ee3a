with

source as (

    select * from {{ source('raw', 'relay_fetch_stats') }}

),

renamed as (

    select
        created_hour,
        relay_url,
        fetched_at,
        events,
        duplicates,
        invalid_ids,
        invalid_signatures,
        invalid_other,
        bad_frames,
        stray_events,
        pages,
        possibly_truncated as is_possibly_truncated,
        eose_received as is_eose_received,
        closed_prefix,
        bytes_received,
        time_to_open_ms,
        time_to_first_event_ms,
        {{ recode_legacy_failure('error_class') }} as error_class

    from source

)

select * from renamed
