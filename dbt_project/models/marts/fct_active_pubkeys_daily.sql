-- Authors active per day. Excluded kinds, because their pubkey is not a person acting that day:
--   1059 gift wrap and 21059 ephemeral gift wrap (NIP-59): one-time keys, created_at
--        randomised up to two days back;
--   13 seal (NIP-59): meant only inside a gift wrap, created_at randomised too;
--   20000-29999 ephemeral (includes 22242 NIP-42 auth and 21059): relays do not store them, so
--        what we see is accidental;
--   9735 zap receipt (NIP-57): signed by the recipient's Lightning wallet service, not by a
--        person; the zapper and the zapped person appear through their own events.
-- Events dated more than one hour after they were first seen are clock-skewed or forged
-- timestamps: they would stretch the day spine into the future, so they are left out.

with

events as (

    select
        pubkey,
        created_at

    from {{ ref('int_events_deduplicated') }}
    where kind not in (13, 1059, 9735)
        and kind not between 20000 and 29999
        and created_at <= first_seen_at + interval 1 hour

),

author_days as (

    select distinct
        pubkey,
        cast(created_at as date) as activity_date

    from events

),

first_days as (

    select
        pubkey,
        min(activity_date) as first_active_date

    from author_days
    group by pubkey

),

spine as (

    select
        cast(
            unnest(generate_series(min(activity_date), max(activity_date), interval 1 day)) as date
        ) as activity_date

    from author_days

),

active_counts as (

    select
        spine.activity_date,
        count(distinct author_days.pubkey) filter (
            where author_days.activity_date = spine.activity_date
        ) as daily_active_authors,
        count(distinct author_days.pubkey) filter (
            where author_days.activity_date > spine.activity_date - 7
        ) as weekly_active_authors,
        count(distinct author_days.pubkey) as monthly_active_authors

    from spine
    left join author_days
        on author_days.activity_date between spine.activity_date - 29 and spine.activity_date
    group by spine.activity_date

),

new_authors as (

    select
        first_active_date as activity_date,
        count(*) as new_authors

    from first_days
    group by first_active_date

),

final as (

    select
        active_counts.activity_date,
        active_counts.daily_active_authors,
        active_counts.weekly_active_authors,
        active_counts.monthly_active_authors,
        coalesce(new_authors.new_authors, 0) as new_authors

    from active_counts
    left join new_authors on new_authors.activity_date = active_counts.activity_date

)

select * from final
