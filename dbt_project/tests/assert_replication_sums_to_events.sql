-- Every event has exactly one replication factor: the histogram sums to the event count.
-- Dagster loads a test that reads several models as an asset check of the model named here.
{{ config(meta={'dagster': {'ref': {'name': 'fct_event_replication'}}}) }}

with

replication as (

    select coalesce(sum(events), 0) as total
    from {{ ref('fct_event_replication') }}

),

events as (

    select count(*) as total
    from {{ ref('int_events_deduplicated') }}

)

select
    replication.total as histogram_events,
    events.total as deduplicated_events

from replication
cross join events
where replication.total <> events.total
