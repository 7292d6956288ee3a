-- NIP-57 zap receipts (kind 9735). The amount is what the bolt11 invoice claims: a receipt is
-- published by the recipient's LNURL server and proves no payment, hence `claimed_`.
-- BOLT-11: the human-readable part ends at the LAST `1` (bech32 data never contains `1`, but
-- the amount digits may); it is `ln` + currency prefix (bc, tb, tbs, bcrt, ...) + optional
-- amount + optional multiplier m/u/n/p of 1 BTC = 1e8 sats.

with

receipts as (

    select * from {{ ref('int_events_deduplicated') }}
    where kind = 9735

),

tagged as (

    select
        event_id,
        pubkey as receipt_pubkey,
        created_at,
        list_filter(tags, t -> t[1] = 'bolt11')[1][2] as bolt11,
        list_filter(tags, t -> t[1] = 'description')[1][2] as zap_request_json,
        list_filter(tags, t -> t[1] = 'p')[1][2] as recipient_pubkey,
        list_filter(tags, t -> t[1] = 'e')[1][2] as zapped_event_id,
        is_deleted

    from receipts

),

parsed as (

    select
        *,
        regexp_extract(
            regexp_extract(lower(bolt11), '^(.*)1[^1]*$', 1),
            '^ln[a-z]+?([0-9]+)([munp]?)$',
            ['digits', 'multiplier']
        ) as amount

    from tagged

),

final as (

    select
        event_id,
        receipt_pubkey,
        created_at,
        cast(created_at as date) as zap_date,
        bolt11,
        -- sats per unit of the invoice's amount: 1 BTC = 1e8 sats, m/u/n/p = 1e-3 .. 1e-12 BTC
        cast(
            try_cast(nullif(amount['digits'], '') as decimal(38, 0))
            * case amount['multiplier']
                when '' then 100000000
                when 'm' then 100000
                when 'u' then 100
                when 'n' then 0.1
                when 'p' then 0.0001
            end
            as decimal(38, 4)
        ) as claimed_amount_sats,
        nullif(amount['digits'], '') is not null as is_amount_claimed,
        case
            when json_valid(zap_request_json)
                then json_extract_string(zap_request_json, '$.pubkey')
        end as sender_pubkey,
        recipient_pubkey,
        zapped_event_id,
        is_deleted

    from parsed

)

select * from final
