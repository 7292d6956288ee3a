with

events as (

    select relay_count from {{ ref('int_events_deduplicated') }}

),

final as (

    select
        relay_count,
        count(*) as events

    from events
    group by relay_count

)

select * from final
