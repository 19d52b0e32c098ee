-- Tenants holding a grace or window the database cannot read as days lose the key, and
-- the check of 20261207219000 then covers every row (review of this stop's diff, issue 14).
--
-- 20261207219000 added its check NOT VALID, meaning to leave rows stored before as they
-- were. But Postgres checks the whole new row at every update of it: a tenant holding,
-- say, "30 days" could no longer be renamed, suspended, deleted or changed by its Clerk
-- organisation's events (23514 on a request that sent none of it), and its admins, who
-- may not touch the grace, could not mend it. Such a value was read as absent (7 days)
-- everywhere; removing it changes no reading. Then the check is validated.

update public.tenants set settings = settings - 'removal_grace_days'
where settings ? 'removal_grace_days' and jsonb_typeof(settings -> 'removal_grace_days') <> 'null'
  and not (jsonb_typeof(settings -> 'removal_grace_days') in ('number', 'string')
           and (settings ->> 'removal_grace_days') ~ '^\d{1,4}$');
update public.tenants set settings = settings - 'reopen_window_days'
where settings ? 'reopen_window_days' and jsonb_typeof(settings -> 'reopen_window_days') <> 'null'
  and not (jsonb_typeof(settings -> 'reopen_window_days') in ('number', 'string')
           and (settings ->> 'reopen_window_days') ~ '^\d{1,4}(\.\d+)?$');
alter table public.tenants validate constraint tenants_settings_days_readable;
