-- One row per calendar day from 1990 (or the earliest deal, when earlier) to the end of
-- 2100, with whether it is a working day (Monday-Friday, corrected by the holiday_calendar
-- seed: public holidays off, 调休 make-up days on) and a running count of working days, so
-- "business days between two dates" is one subtraction instead of a scan per deal. It
-- does not follow the as-of day (its readers cut at it), so a next day keeps it: some
-- 40,000 rows, built again only when the deals' exports or the holidays change.
with bounds as (
    select
        least(min({{ local_date('created_at') }}), date '1990-01-01') as first_day,
        date '2100-12-31' as last_day
    from {{ ref('stg_raw__opportunities') }}
),

days as (
    {{ days_from_to('bounds', 'first_day', 'last_day', 'calendar_date') }}
),

flagged as (
    select
        d.calendar_date,
        coalesce(h.is_workday, {{ iso_day_of_week('d.calendar_date') }} <= 5) as is_workday,
        h.name as holiday_name
    from days as d
    left join {{ ref('holiday_calendar') }} as h on d.calendar_date = h.calendar_date
)

select
    calendar_date,
    is_workday,
    holiday_name,
    {{ week_start("calendar_date") }} as week_start,
    sum(case when is_workday then 1 else 0 end) over (order by calendar_date) as workday_index
from flagged
