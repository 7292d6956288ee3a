with

source as (

    select * from {{ source('raw', 'relay_geolocations') }}

),

renamed as (

    select
        snapshot_hour,
        relay_url,
        ip,
        upper(country_code) as country_code,
        country_name,
        city,
        latitude,
        longitude,
        asn,
        as_organization,
        city_db_edition,
        city_db_built_at,
        asn_db_edition,
        asn_db_built_at

    from source

)

select * from renamed
