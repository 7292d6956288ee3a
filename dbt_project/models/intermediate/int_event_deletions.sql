-- NIP-09: a kind-5 event deletes, by `e` tag, events by id and, by `a` tag
-- (`kind:pubkey:d`), every version of an addressable/replaceable event up to the deletion's
-- created_at. Only the author may delete: the target's pubkey must equal the deleter's.
-- Deletions of deletions have no effect (NIP-09), so kind-5 targets are skipped.

with

events as (

    select * from {{ ref('stg_nostr__events') }}

),

deletion_tags as (

    select
        event_id as deletion_event_id,
        pubkey as deleter_pubkey,
        created_at_unix as deleted_at_unix,
        unnest(tags) as tag

    from events
    where kind = 5

),

coordinates as (

    select
        deletion_event_id,
        deleter_pubkey,
        deleted_at_unix,
        regexp_extract(tag[2], '^([0-9]+):([^:]*):(.*)$', ['kind', 'pubkey', 'd']) as coordinate

    from deletion_tags
    where tag[1] = 'a'

),

addressable_events as (

    select
        event_id,
        pubkey,
        kind,
        created_at_unix,
        {{ d_tag('kind', 'tags') }} as d_tag

    from events
    where {{ is_replaceable_kind('kind') }} or {{ is_addressable_kind('kind') }}

),

deleted_by_id as (

    select
        targets.event_id,
        deletion_tags.deletion_event_id,
        deletion_tags.deleted_at_unix,
        'e' as deleted_via

    from deletion_tags
    inner join events as targets
        on targets.event_id = deletion_tags.tag[2]
        and targets.pubkey = deletion_tags.deleter_pubkey
    where deletion_tags.tag[1] = 'e'
        and targets.kind <> 5

),

deleted_by_address as (

    select
        targets.event_id,
        coordinates.deletion_event_id,
        coordinates.deleted_at_unix,
        'a' as deleted_via

    from coordinates
    inner join addressable_events as targets
        on targets.pubkey = coordinates.coordinate['pubkey']
        and targets.kind = try_cast(coordinates.coordinate['kind'] as integer)
        and targets.d_tag = coordinates.coordinate['d']
        and targets.pubkey = coordinates.deleter_pubkey
        and targets.created_at_unix <= coordinates.deleted_at_unix

),

all_deletions as (

    select * from deleted_by_id
    union all
    select * from deleted_by_address

),

final as (

    -- several deletions may hit one event: keep the earliest (lowest id on a tie)
    select
        event_id,
        arg_min(deletion_event_id, (deleted_at_unix, deletion_event_id)) as deletion_event_id,
        to_timestamp(min(deleted_at_unix)) as deleted_at,
        arg_min(deleted_via, (deleted_at_unix, deletion_event_id)) as deleted_via,
        count(*) as deletion_requests

    from all_deletions
    group by event_id

)

select * from final
