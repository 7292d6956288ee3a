with

relays as (

    select * from {{ ref('dim_relays') }}
    where is_reachable

),

final as (

    -- 'ZZ' (ISO user-assigned "unknown") keeps ungeolocated reachable relays visible
    select
        coalesce(country_code, 'ZZ') as country_code,
        coalesce(any_value(country_name), 'Unknown') as country_name,
        count(*) as reachable_relays,
        avg(latitude) as latitude,
        avg(longitude) as longitude

    from relays
    group by coalesce(country_code, 'ZZ')

)

select * from final
