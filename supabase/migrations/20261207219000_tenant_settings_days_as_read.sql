-- A tenant's removal grace and reopen window hold only what the database reads as days,
-- on every path (review of this stop's settings check, issue 14).
--
-- The functions refuse (422) a `settings.removal_grace_days` other than a whole number of
-- days up to 9999 and a `reopen_window_days` other than a number of days below 10,000,
-- since the database reads anything else as 7: a grace of 14.5 or "30 days" removed the
-- tenant's partner spaces, for good, after a week. A platform admin (the grace) or a
-- tenant's admin (the window) writing `tenants` through PostgREST still stored them. The
-- table now refuses them too, in the forms the readers take (a number, or its digits as
-- text: `^\d{1,4}$` for the grace, `^\d{1,4}(\.\d+)?$` for the window; null or absent is
-- the default). NOT VALID: rows stored before are read as they were until next written.

alter table public.tenants add constraint tenants_settings_days_readable check (
  (case when settings ? 'removal_grace_days' and jsonb_typeof(settings -> 'removal_grace_days') <> 'null'
        then jsonb_typeof(settings -> 'removal_grace_days') in ('number', 'string')
             and (settings ->> 'removal_grace_days') ~ '^\d{1,4}$'
        else true end)
  and (case when settings ? 'reopen_window_days' and jsonb_typeof(settings -> 'reopen_window_days') <> 'null'
            then jsonb_typeof(settings -> 'reopen_window_days') in ('number', 'string')
                 and (settings ->> 'reopen_window_days') ~ '^\d{1,4}(\.\d+)?$'
            else true end)
) not valid;
