-- Every event has exactly one replication factor: the histogram sums to the event count.
-- Dagster loads a test that reads several models as an asset check of the model named here.
{{ config(meta={'dagster': {'ref': {'name': 'fct_event_replication'}}}) }}
select replication.total, events.total
from (select coalesce(sum(events), 0) as total from {{ ref('fct_event_replication') }}) as replication
cross join (select count(*) as total from {{ ref('int_events_deduplicated') }}) as events
where replication.total <> events.total
