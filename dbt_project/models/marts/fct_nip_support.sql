with

relays as (

    select
        relay_url,
        supported_nips

    from {{ ref('dim_relays') }}
    where has_nip11

),

total as (

    select count(*) as relays_with_nip11 from relays

),

nips as (

    select distinct
        relay_url,
        unnest(supported_nips) as nip

    from relays

),

final as (

    select
        nips.nip,
        count(*) as relays_supporting,
        any_value(total.relays_with_nip11) as relays_with_nip11,
        count(*) / any_value(total.relays_with_nip11) as share_of_relays

    from nips
    cross join total
    where nips.nip is not null
    group by nips.nip

)

select * from final
