-- NIP-23 long-form articles (kind 30023): current versions that no valid deletion flags.
-- An edit republishes the article with a new created_at, so the day an article was published
-- comes from its `published_at` tag (unix seconds, stable across edits) when it parses, else
-- from created_at.

with

articles as (

    select * from {{ ref('int_events_current_replaceable') }}
    where kind = 30023
        and not is_deleted

),

dated as (

    select
        pubkey,
        cast(
            coalesce(
                to_timestamp(
                    try_cast(list_filter(tags, t -> t[1] = 'published_at')[1][2] as bigint)
                ),
                created_at
            ) as date
        ) as published_date

    from articles

),

final as (

    select
        published_date,
        count(*) as articles,
        count(distinct pubkey) as authors

    from dated
    group by published_date

)

select * from final
