-- NIP-25: a reaction (kind 7) targets the event in its LAST `e` tag (earlier e tags are
-- thread context). Deleted reactions are un-reactions and deleted notes are gone for their
-- author, so both are left out.

with

events as (

    select * from {{ ref('int_events_deduplicated') }}

),

reactions as (

    select
        event_id as reaction_id,
        pubkey as reactor_pubkey,
        list_filter(tags, t -> t[1] = 'e')[-1][2] as target_event_id

    from events
    where kind = 7
        and not is_deleted

),

notes as (

    select
        event_id,
        pubkey,
        created_at

    from events
    where kind = 1
        and not is_deleted

),

counted as (

    select
        notes.event_id,
        any_value(notes.pubkey) as author_pubkey,
        any_value(notes.created_at) as created_at,
        count(*) as reactions,
        count(distinct reactions.reactor_pubkey) as distinct_reactors

    from reactions
    inner join notes on notes.event_id = reactions.target_event_id
    group by notes.event_id

),

final as (

    select
        row_number() over (order by reactions desc, event_id asc) as reaction_rank,
        *

    from counted
    qualify reaction_rank <= 100

)

select * from final
