// The Chatwoot connector against a stand-in that answers as Chatwoot's own controllers do
// (tests/partners/chatwoot.ts names the source of each behaviour): the owner login's
// password is stored only where it works, rotation applies the new one, the account
// webhook is made once at this tenant's inbound URL with its secret kept, and removal
// copes with Chatwoot deleting in the background.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chatwootConnector } from '../../shared/connectors/chatwoot.ts';
import { PartnerError } from '../../shared/connectors/types.ts';
import { ChatwootStandIn } from '../partners/chatwoot.ts';
import { check, settle, step, tenant } from './harness.ts';

let cw: ChatwootStandIn;
const inbound = (tenantId: string) => `http://127.0.0.1:54321/functions/v1/webhooks/chatwoot/${tenantId}?token=t-${tenantId.slice(0, 8)}`;
const connector = (opts: { webhooks?: boolean; timeoutMs?: number } = {}) =>
  chatwootConnector({ url: cw.url, platformToken: cw.token, timeoutMs: opts.timeoutMs ?? 3_000, inboundUrl: opts.webhooks === false ? undefined : inbound });

beforeAll(async () => {
  cw = await ChatwootStandIn.start();
});
afterEach(() => {
  cw.server.resetFaults();
  cw.signing = true;
});
afterAll(() => cw.server.close());

describe('the owner login', () => {
  it("stores a password only for a login this tenant created; a second tenant of the same owner gets 'existing login', and the first password keeps working", async () => {
    const a = tenant('cw-a');
    await step(connector(), a, 'ensure');
    const user = cw.userByEmail(a.admin!.email)!;
    expect(a.credentials).toMatchObject({ email: a.admin!.email, password: user.password });
    expect(a.externalIds.owner_login).toBe('created');

    const b = tenant('cw-b', a.admin!.email);
    await step(connector(), b, 'ensure');
    expect(b.credentials!.password).toBeUndefined(); // Chatwoot did not apply any password it was sent
    expect(b.credentials).toMatchObject({ email: a.admin!.email, existing_login: true, note: expect.stringContaining('existing password') });
    expect(b.externalIds).toMatchObject({ user_id: user.id, owner_login: 'existing' });
    expect(cw.userByEmail(a.admin!.email)!.password).toBe(a.credentials!.password);
    // The owner is administrator of both accounts.
    expect(cw.links.filter((l) => l.user_id === user.id).map((l) => l.role)).toEqual(['administrator', 'administrator']);
  });

  it('never overwrites the password of a person who signed up at Chatwoot by themselves (e-mail matched case-insensitively)', async () => {
    const own = cw.addForeignUser('self@cw-self.test', 'Mine-0nly!');
    const t = tenant('cw-self', 'Self@CW-Self.test');
    await step(connector(), t, 'ensure');
    expect(t.externalIds.user_id).toBe(own.id);
    expect(t.credentials).toMatchObject({ existing_login: true });
    expect(t.credentials!.password).toBeUndefined();
    // Rotation does not touch it either.
    t.credentials = null;
    await step(connector(), t, 'ensure');
    expect(cw.users.get(own.id)!.password).toBe('Mine-0nly!');
    expect(t.credentials).toMatchObject({ existing_login: true });
  });

  it('rotation applies the new password with PATCH …/users/{id} (POST /users would not), also after a failure in between', async () => {
    const t = tenant('cw-rot');
    await step(connector(), t, 'ensure');
    const first = t.credentials!.password;
    const { access_token, webhook_secret } = t.credentials!;
    expect([access_token, webhook_secret].every(Boolean)).toBe(true);
    t.externalIds.password_rotations = 1; // what rotate_service_credentials asks
    cw.server.faults = { ...cw.server.faults, match: /^PATCH \/platform\/api\/v1\/users\//, fail5xx: 1 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 503 });
    // Chosen and recorded with the rotation it answers, not yet applied; the owner token
    // and the webhook secret stay, for the replies and the inbound events meanwhile.
    expect(t.credentials).toMatchObject({ password_pending: true, access_token, webhook_secret });
    expect(t.externalIds.password_rotated).toBe(1);
    const pending = t.credentials!.password;
    await settle(connector(), t, 'ensure');
    const user = cw.userByEmail(t.admin!.email)!;
    expect(t.credentials!.password).not.toBe(first);
    expect(t.credentials!.password).toBe(pending); // the retry applied the one recorded
    expect(user.password).toBe(t.credentials!.password);
    expect(t.credentials).toMatchObject({ access_token });
    expect(t.credentials!.password_pending).toBeUndefined();
    // The webhook is replaced too, with a new secret (the old one's was shown to whoever
    // signed in as the owner); only the new one is left.
    const hooks = cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id);
    expect(hooks).toHaveLength(1);
    expect(hooks[0].secret).not.toBe(webhook_secret);
    expect([t.credentials!.webhook_secret, t.externalIds.webhook_id]).toEqual([hooks[0].secret, hooks[0].id]);
    // Answered once: a later run changes nothing; a second rotation gives another password.
    await step(connector(), t, 'ensure');
    expect(t.credentials!.password).toBe(pending);
    t.externalIds.password_rotations = 2;
    await step(connector(), t, 'ensure');
    expect(t.credentials!.password).not.toBe(pending);
    expect(cw.userByEmail(t.admin!.email)!.password).toBe(t.credentials!.password);
  });

  it('a rotation replaces the webhook once: the new one (a new secret, at the new URL) made and recorded before the old goes, a lost answer included', async () => {
    const byGeneration = (tenantId: string, g = 0) => `http://127.0.0.1:54321/functions/v1/webhooks/chatwoot/${tenantId}?token=g${g}`;
    const conn = () => chatwootConnector({ url: cw.url, platformToken: cw.token, timeoutMs: 3_000, inboundUrl: byGeneration });
    const t = tenant('cw-rekey');
    await step(conn(), t, 'ensure');
    const [old] = cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id).map((w) => ({ ...w }));
    t.externalIds.password_rotations = 1;
    // Chatwoot makes the new webhook but its answer is lost.
    cw.server.faults = { ...cw.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/webhooks$/, dropAfterWork: 1 };
    await expect(step(conn(), t, 'ensure')).rejects.toBeInstanceOf(PartnerError);
    // Meanwhile the old one still serves, as recorded: no event falls between the two.
    expect(cw.webhooks.some((w) => w.id === old.id)).toBe(true);
    expect(t.credentials!.webhook_secret).toBe(old.secret);
    await settle(conn(), t, 'ensure');
    const hooks = cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id);
    expect(hooks).toHaveLength(1);
    expect(hooks[0].id).not.toBe(old.id);
    expect(hooks[0].url).not.toBe(old.url);
    expect(hooks[0].secret).not.toBe(old.secret);
    expect([t.credentials!.webhook_secret, t.externalIds.webhook_id]).toEqual([hooks[0].secret, hooks[0].id]);
    // Once: the next run keeps it, and the replaced secret for its grace.
    await step(conn(), t, 'ensure');
    expect(cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id)).toEqual([hooks[0]]);
    expect(t.credentials!.webhook_former_secret).toBe(old.secret);
    expect(await check(conn(), t)).toBe(true);
    // A new owner (the former one was shown the owner's password): replaced again.
    t.admin = { ...t.admin!, email: 'next-owner@cw-rekey.test' };
    await settle(conn(), t, 'ensure');
    const third = cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id);
    expect(third).toHaveLength(1);
    expect(third[0].id).not.toBe(hooks[0].id);
    expect([t.credentials!.webhook_secret, t.credentials!.webhook_former_secret]).toEqual([third[0].secret, hooks[0].secret]);
  });

  it('makes no duplicate when answers are lost or slow (5xx, 429 Retry-After, timeout, dropped connection)', async () => {
    const t = tenant('cw-faults');
    cw.server.faults = { ...cw.server.faults, fail5xx: 1, rateLimit: 1 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 503 });
    // rack-attack's 429: "Retry later" as plain text, no Retry-After (the queue's backoff decides).
    const limited = await step(connector(), t, 'ensure').catch((e) => e);
    expect(limited).toMatchObject({ retryable: true, status: 429 });
    expect(limited.retryAfterSeconds).toBeUndefined();
    // A proxy in front that does say when: taken.
    cw.server.faults = { ...cw.server.faults, rateLimit: 1, retryAfterSeconds: 7 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 429, retryAfterSeconds: 7 });
    // (A lost answer to POST /platform/api/v1/accounts would leave an orphan account:
    // Chatwoot has no call that lists or searches accounts. See the README.)
    cw.server.faults = { ...cw.server.faults, match: /^POST \/platform\/api\/v1\/users$/, dropAfterWork: 1 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true });
    cw.server.faults = { ...cw.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/webhooks$/, dropAfterWork: 1 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true });
    cw.server.faults = { ...cw.server.faults, match: /^POST \/platform\/api\/v1\/accounts\/\d+\/account_users$/, slow: 1, slowMs: 1_000 };
    await expect(step(connector({ timeoutMs: 250 }), t, 'ensure')).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('timed out') });
    await settle(connector(), t, 'ensure');
    const accounts = [...cw.accounts.values()].filter((a) => a.custom_attributes.tenant_id === t.tenant.id);
    expect(accounts).toHaveLength(1);
    expect(cw.webhooks.filter((w) => w.account_id === accounts[0].id)).toHaveLength(1);
    expect(cw.userByEmail(t.admin!.email)!.password).toBe(t.credentials!.password);
  });
});

describe('two tenants of one owner at once', () => {
  it("a create that lost Chatwoot's race for the e-mail (422 Email has already been taken) asks again and finds the login", async () => {
    const a = tenant('cw-race-a');
    await step(connector(), a, 'ensure');
    const b = tenant('cw-race-b');
    b.admin = a.admin;
    cw.emailRaces = 1;
    await step(connector(), b, 'ensure');
    expect(cw.emailRaces).toBe(0);
    expect(b.externalIds.user_id).toBe(a.externalIds.user_id);
    expect(b.externalIds.owner_login).toBe('existing');
    // Any other 422 is still the permanent error it was.
    cw.invalidEmails.add('bad@race.test');
    const c = tenant('cw-race-c');
    c.admin = { ...c.admin!, email: 'bad@race.test' };
    await expect(step(connector(), c, 'ensure')).rejects.toMatchObject({ retryable: false, status: 422 });
  });
});

describe('the account webhook', () => {
  it("is created once at the tenant's inbound URL with the three events; its secret is kept with the credentials", async () => {
    const t = tenant('cw-hook');
    await step(connector(), t, 'ensure');
    const hooks = cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({ url: inbound(t.tenant.id), subscriptions: ['conversation_created', 'message_created', 'conversation_status_changed'] });
    expect(t.externalIds.webhook_id).toBe(hooks[0].id);
    expect(t.credentials!.webhook_secret).toBe(hooks[0].secret);
    // A rerun finds it by URL (Chatwoot would refuse a second one: 422 "Url has already been taken").
    await step(connector(), t, 'ensure');
    expect(cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id)).toHaveLength(1);
    expect(await check(connector(), t)).toBe(true);
  });

  it('keeps the secret through a rotation (found again by URL) and adds missing subscriptions to an existing webhook', async () => {
    const t = tenant('cw-hook2');
    await step(connector(), t, 'ensure');
    const hook = cw.webhooks.find((w) => w.account_id === t.externalIds.account_id)!;
    hook.subscriptions = ['message_created'];
    t.credentials = null; // credentials lost: the secret is found again with the webhook
    await step(connector(), t, 'ensure');
    expect(hook.subscriptions.sort()).toEqual(['conversation_created', 'conversation_status_changed', 'message_created']);
    expect(t.credentials!.webhook_secret).toBe(hook.secret);
  });

  it('on a Chatwoot that does not sign (no secret) the webhook is made and no secret is stored: the URL token authenticates', async () => {
    cw.signing = false;
    const t = tenant('cw-old');
    await step(connector(), t, 'ensure');
    expect(cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id)).toHaveLength(1);
    expect(t.credentials!.webhook_secret).toBeUndefined();
  });

  it('a webhook deleted at Chatwoot is drift: check says so and ensure makes it again', async () => {
    const t = tenant('cw-drift');
    await step(connector(), t, 'ensure');
    cw.webhooks = cw.webhooks.filter((w) => w.account_id !== t.externalIds.account_id);
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(await check(connector(), t)).toBe(true);
  });

  it("an owner token that no longer works (the login unlinked, its token reset) is drift that ensure repairs, not a check error", async () => {
    const t = tenant('cw-token');
    await step(connector(), t, 'ensure');
    const userId = t.externalIds.user_id as number;
    cw.links = cw.links.filter((l) => !(l.user_id === userId && l.account_id === t.externalIds.account_id));
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(await check(connector(), t)).toBe(true);
    cw.users.get(userId)!.access_token = 'reset-at-chatwoot';
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(t.credentials!.access_token).toBe('reset-at-chatwoot');
    expect(await check(connector(), t)).toBe(true);
  });

  it("a webhook at another URL (the project moved, a new CHATWOOT_WEBHOOK_KEY) is drift: ensure moves it, keeping its id and secret", async () => {
    const t = tenant('cw-moved');
    await step(connector(), t, 'ensure');
    const hook = cw.webhooks.find((w) => w.account_id === t.externalIds.account_id)!;
    const { id, secret } = hook;
    const moved = (tenantId: string) => `https://new-project.example.com/functions/v1/webhooks/chatwoot/${tenantId}?token=new`;
    const after = () => chatwootConnector({ url: cw.url, platformToken: cw.token, timeoutMs: 3_000, inboundUrl: moved });
    expect(await check(connector(), t)).toBe(true);
    expect(await check(after(), t)).toBe(false);
    await step(after(), t, 'ensure');
    expect(cw.webhooks.filter((w) => w.account_id === t.externalIds.account_id)).toEqual([expect.objectContaining({ id, secret, url: moved(t.tenant.id) })]);
    expect(t.externalIds.webhook_id).toBe(id);
    expect(t.credentials!.webhook_secret).toBe(secret);
    expect(await check(after(), t)).toBe(true);
  });
});

describe('suspend, resume and removal', () => {
  it('suspend and resume switch the account status (Chatwoot then refuses its users: 401 Account is suspended)', async () => {
    const t = tenant('cw-susp');
    await step(connector(), t, 'ensure');
    await step(connector(), t, 'suspend');
    expect(cw.accounts.get(t.externalIds.account_id)!.status).toBe('suspended');
    const token = t.credentials!.access_token;
    const res = await fetch(`${cw.url}/api/v1/accounts/${t.externalIds.account_id}/conversations/1/messages`, {
      method: 'POST', headers: { api_access_token: token, 'content-type': 'application/json' }, body: '{"content":"x"}',
    });
    expect([res.status, await res.json()]).toEqual([401, { error: 'Account is suspended' }]);
    await step(connector(), t, 'resume');
    expect(cw.accounts.get(t.externalIds.account_id)!.status).toBe('active');
    // Suspended at Chatwoot while the service is active: drift, which ensure repairs.
    cw.accounts.get(t.externalIds.account_id)!.status = 'suspended';
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(cw.accounts.get(t.externalIds.account_id)!.status).toBe('active');
    expect(await check(connector(), t)).toBe(true);
  });

  it('a resume after the owner changed while the tenant was suspended leaves the account suspended until ensure has taken the former owner out', async () => {
    const t = tenant('cw-left-suspended');
    await step(connector(), t, 'ensure');
    const account = t.externalIds.account_id as number;
    const former = t.externalIds.user_id as number;
    await step(connector(), t, 'suspend');
    t.admin = { email: 'next@cw-left-suspended.test', name: 'Ned Next' };
    await step(connector(), t, 'resume');
    expect(cw.accounts.get(account)!.status).toBe('suspended');
    const linked = () => cw.links.filter((l) => l.account_id === account).map((l) => l.user_id);
    expect(linked()).toContain(former);
    // Ensure failing at the new owner's link: the former owner is out already.
    cw.server.faults = { ...cw.server.faults, match: /^POST \/platform\/api\/v1\/accounts\/\d+\/account_users$/, fail5xx: 1 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true });
    expect(linked()).not.toContain(former);
    await step(connector(), t, 'ensure');
    expect(cw.accounts.get(account)!.status).toBe('active');
    expect(linked()).toEqual([t.externalIds.user_id]);
    expect(t.externalIds.user_id).not.toBe(former);
    // The same owner throughout: resumed at once, as before.
    await step(connector(), t, 'suspend');
    await step(connector(), t, 'resume');
    expect(cw.accounts.get(account)!.status).toBe('active');
  });

  it('removal ends access at once although Chatwoot deletes later; check sees it gone, a rerun is harmless, ensure never reuses it', async () => {
    const t = tenant('cw-rm');
    await step(connector(), t, 'ensure');
    const id = t.externalIds.account_id;
    await step(connector(), t, 'remove');
    // Chatwoot's DeleteObjectJob has not run: the account still reads as present…
    expect(cw.accounts.get(id)).toMatchObject({ status: 'suspended', custom_attributes: { deletion_requested_at: expect.any(String) } });
    // …but it is gone for us.
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'remove');
    // Enabled again before the job ran: a fresh account, not the one being deleted.
    const again = { ...t, externalIds: { ...t.externalIds }, credentials: { ...t.credentials } };
    await step(connector(), again, 'ensure');
    expect(again.externalIds.account_id).not.toBe(id);
    cw.runJobs();
    expect(cw.accounts.has(id)).toBe(false);
    await step(connector(), t, 'remove'); // 404 now: already removed
  });

  it('an account deleted at Chatwoot: suspend has nothing to do, and resume then ensure make it again', async () => {
    const t = tenant('cw-gone');
    await step(connector(), t, 'ensure');
    const id = t.externalIds.account_id;
    cw.accounts.delete(id);
    await step(connector(), t, 'suspend');
    expect(cw.server.log.at(-1)).toMatchObject({ method: 'PATCH', status: 404 });
    await step(connector(), t, 'resume');
    await step(connector(), t, 'ensure');
    expect(t.externalIds.account_id).not.toBe(id);
    expect(cw.accounts.get(t.externalIds.account_id)!.status).toBe('active');
    expect(await check(connector(), t)).toBe(true);
  });

  it('an answer that breaks off halfway is a failure to retry, not "not there": removal is not taken as done', async () => {
    const t = tenant('cw-rm-cut');
    await step(connector(), t, 'ensure');
    const id = t.externalIds.account_id;
    cw.server.faults = { ...cw.server.faults, match: /^GET \/platform\/api\/v1\/accounts\/\d+$/, truncateBody: 1 };
    const err = await step(connector(), t, 'remove').catch((e) => e);
    expect(err).toBeInstanceOf(PartnerError);
    expect(err).toMatchObject({ retryable: true, message: expect.stringContaining('in the answer') });
    expect(cw.server.log.at(-1)).toMatchObject({ method: 'GET', status: 'dropped' });
    expect(cw.accounts.get(id)!.status).toBe('active');
    // The queue's next attempt removes it.
    await step(connector(), t, 'remove');
    expect(cw.accounts.get(id)).toMatchObject({ status: 'suspended', custom_attributes: { deletion_requested_at: expect.any(String) } });
  });

  it("removal deletes the login this tenant created unless another tenant's account uses it", async () => {
    const a = tenant('cw-rm-a');
    await step(connector(), a, 'ensure');
    const b = tenant('cw-rm-b', a.admin!.email);
    await step(connector(), b, 'ensure');
    await step(connector(), a, 'remove');
    cw.runJobs();
    expect(cw.userByEmail(a.admin!.email)).toBeDefined(); // b still uses it
    await step(connector(), b, 'remove'); // b did not create it: never deleted by b
    cw.runJobs();
    expect(cw.userByEmail(a.admin!.email)).toBeDefined();

    const solo = tenant('cw-rm-solo');
    await step(connector(), solo, 'ensure');
    await step(connector(), solo, 'remove');
    cw.runJobs();
    expect(cw.userByEmail(solo.admin!.email)).toBeUndefined();
    await step(connector(), solo, 'remove');
  });

  it('an account this platform app did not create is a permanent 401 "Non permissible resource"', async () => {
    const t = tenant('cw-foreign');
    await step(connector({ webhooks: false }), t, 'ensure');
    cw.permissible.delete(`account:${t.externalIds.account_id}`);
    const err = await step(connector(), t, 'suspend').catch((e) => e);
    expect(err).toBeInstanceOf(PartnerError);
    expect(err).toMatchObject({ retryable: false, status: 401, message: expect.stringContaining('Non permissible resource') });
  });
});
