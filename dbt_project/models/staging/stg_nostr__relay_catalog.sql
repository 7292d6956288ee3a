with

source as (

    select * from {{ source('raw', 'relay_catalog') }}

),

renamed as (

    select
        relay_url,
        source as discovery_source,
        first_seen_at,
        last_seen_at,
        is_guarded,
        {{ recode_legacy_failure('guard_reason') }} as guard_reason

    from source

)

select * from renamed
