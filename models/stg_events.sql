-- Staging view over the app's raw event log: one row per event, tidy names,
-- rows without a user dropped.  Materialised as the view <schema>.stg_events.
select
    user_id,
    ts,
    lower(event_name) as event_name,
    value,
    country
from raw.events
where user_id is not null
