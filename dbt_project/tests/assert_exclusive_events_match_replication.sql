-- Events held by exactly one relay appear once as some relay's exclusive events.
-- Dagster loads a test that reads several models as an asset check of the model named here.
{{ config(meta={'dagster': {'ref': {'name': 'fct_relay_coverage'}}}) }}

with

coverage as (

    select coalesce(sum(exclusive_events), 0) as total
    from {{ ref('fct_relay_coverage') }}

),

replication as (

    select coalesce(sum(events), 0) as total
    from {{ ref('fct_event_replication') }}
    where relay_count = 1

)

select
    coverage.total as exclusive_events,
    replication.total as single_relay_events

from coverage
cross join replication
where coverage.total <> replication.total
