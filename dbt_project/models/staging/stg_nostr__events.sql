with

source as (

    select * from {{ source('raw', 'nostr_events') }}

),

renamed as (

    select
        event_id,
        pubkey,
        kind,
        created_at as created_at_unix,
        to_timestamp(created_at) as created_at,
        created_hour,
        -- tags land as a JSON array of arrays of strings; parse once here so models
        -- downstream filter lists instead of re-parsing JSON.
        from_json(tags, '[["VARCHAR"]]') as tags,
        tags as tags_json,
        content,
        first_seen_at,
        relay_count as crawler_relay_count

    from source

)

select * from renamed
