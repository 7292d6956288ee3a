with

receipts as (

    select * from {{ ref('int_zap_receipts') }}

),

final as (

    -- receipts flagged deleted stay counted: a deletion by the LNURL server does not undo a
    -- payment claim, and the flag is rare enough not to matter (see int_zap_receipts)
    select
        zap_date,
        count(*) as zaps,
        count(*) filter (where is_amount_claimed) as zaps_with_amount,
        coalesce(sum(claimed_amount_sats), 0) as claimed_amount_sats,
        count(distinct sender_pubkey) as distinct_senders,
        count(distinct recipient_pubkey) as distinct_recipients

    from receipts
    group by zap_date

)

select * from final
