with

relays as (

    select * from {{ ref('dim_relays') }}
    where has_nip11

),

final as (

    -- a document without software/version is still a relay: group it as '(unknown)'
    select
        coalesce(software, '(unknown)') as software,
        coalesce(software_version, '(unknown)') as software_version,
        count(*) as relays

    from relays
    group by all

)

select * from final
