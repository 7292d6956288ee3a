-- The current version of every replaceable (0, 3, 10000-19999: latest per pubkey+kind) and
-- addressable (30000-39999: latest per pubkey+kind+first `d` tag value, '' when missing) event.
-- Ties on created_at keep the lowest id (NIP-01). The newest version is current even when a
-- deletion flags it: a deleted event does not resurrect the version it replaced.

with

events as (

    select * from {{ ref('int_events_deduplicated') }}
    where {{ is_replaceable_kind('kind') }} or {{ is_addressable_kind('kind') }}

),

keyed as (

    select
        *,
        {{ is_addressable_kind('kind') }} as is_addressable,
        {{ d_tag('kind', 'tags') }} as d_tag

    from events

),

final as (

    select
        event_id,
        pubkey,
        kind,
        d_tag,
        is_addressable,
        created_at_unix,
        created_at,
        tags,
        content,
        is_deleted,
        count(*) over (partition by pubkey, kind, d_tag) as versions_seen

    from keyed
    qualify
        row_number() over (
            partition by pubkey, kind, d_tag
            order by created_at_unix desc, event_id asc
        ) = 1

)

select * from final
