with

source as (

    select * from {{ source('raw', 'event_relay_sightings') }}

),

renamed as (

    select
        event_id,
        relay_url,
        created_hour,
        first_seen_at

    from source

)

select * from renamed
