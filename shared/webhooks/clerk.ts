// Clerk → platform sync. Clerk signs with Svix (the Standard Webhooks scheme) but names
// the headers svix-*; the standardwebhooks library reads webhook-*, so they are mapped.
// Users and their identity mapping, organisations as tenants (CLERK_ORGS_AS_TENANTS,
// on by default) and memberships with a configurable role mapping (CLERK_ROLE_MAP).
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { Tx } from '../db.ts';
import { env } from '../env.ts';
import { ApiError, badRequest, conflict, unauthorized } from '../errors.ts';

/** A partner's JSON payload: shapes are checked where they are read. */
// deno-lint-ignore no-explicit-any
type Payload = Record<string, any>;

type ClerkEvent = { type: string; data: Payload; timestamp?: number };

export function verifyClerk(body: string, headers: Headers): ClerkEvent {
  const secret = env('CLERK_WEBHOOK_SECRET');
  if (!secret) {
    throw new ApiError(503, 'not_configured', 'Clerk webhooks are not configured (CLERK_WEBHOOK_SECRET)');
  }
  const id = headers.get('svix-id');
  const timestamp = headers.get('svix-timestamp');
  const signature = headers.get('svix-signature');
  if (!id || !timestamp || !signature) {
    throw badRequest('missing_signature', 'svix-id, svix-timestamp and svix-signature are required');
  }
  let webhook: Webhook;
  try {
    webhook = new Webhook(secret);
  } catch {
    // A secret that is no whsec_ key (a line break pasted with it, a typo): the
    // deployment's fault, said as such (a 5xx, logged) — not the sender's invalid JSON,
    // which Svix would retry and then disable the endpoint for, unseen.
    throw new ApiError(503, 'not_configured', 'CLERK_WEBHOOK_SECRET is not a valid signing secret (whsec_…)');
  }
  try {
    // Checks every signature in the header (rotation sends several) and a 5-minute window.
    return webhook.verify(body, {
      'webhook-id': id,
      'webhook-timestamp': timestamp,
      'webhook-signature': signature,
    }) as ClerkEvent;
  } catch (err) {
    if (err instanceof WebhookVerificationError) {
      throw unauthorized('invalid_signature', `Webhook rejected: ${err.message}`);
    }
    throw badRequest('invalid_payload', 'The body is not valid JSON');
  }
}

function roleFor(clerkRole: string): 'admin' | 'agent' | 'user' {
  const configured = env('CLERK_ROLE_MAP');
  const map: Record<string, string> = configured
    ? JSON.parse(configured)
    : { 'org:admin': 'admin', admin: 'admin', 'org:agent': 'agent' };
  const role = map[clerkRole] ?? 'user';
  return role === 'admin' || role === 'agent' ? role : 'user';
}

function issuer(): string {
  const iss = env('CLERK_ISSUER');
  if (!iss) throw new ApiError(503, 'not_configured', 'CLERK_ISSUER is needed to map Clerk users');
  return iss.replace(/\/$/, '');
}

/** The primary e-mail, and whether Clerk verified it. */
function primaryEmail(data: Payload): { email?: string; verified: boolean } {
  const list = (Array.isArray(data.email_addresses) ? data.email_addresses : []) as Payload[];
  const entry = list.find((e) => e.id === data.primary_email_address_id) ?? list[0];
  const email = typeof entry?.email_address === 'string' ? entry.email_address.toLowerCase() : undefined;
  return { email, verified: entry?.verification?.status === 'verified' };
}

/** An address another Clerk user's person here still has. */
const ADDRESS_HELD = Symbol('address held by another Clerk user');
/** A login a user.deleted took while this event waited for the person: no one now. */
const RETIRED = Symbol('the login was retired meanwhile');

/** The platform user behind a Clerk user id. A new one is created, or an existing one
 *  linked by e-mail, only for an address Clerk verified — and never a platform admin,
 *  nor a person another Clerk user already signs in as: ADDRESS_HELD. Clerk lets an
 *  address move from one user to another, and Svix sends the new owner's user.created
 *  before the old owner's user.updated at will; linked by the address, the new user
 *  would sign in as the old one, memberships and roles included. */
async function upsertUser(
  tx: Tx,
  clerkId: string,
  address: { email?: string; verified: boolean },
  names: { first?: string; last?: string; image?: string },
): Promise<string | undefined | typeof ADDRESS_HELD | typeof RETIRED> {
  const login = async () =>
    (await tx`select user_id from public.user_identities where issuer = ${issuer()} and subject = ${clerkId}`)[0];
  let known = await login();
  if (known) {
    // The person first, as a user.deleted's retirement locks them (retire_identity), then
    // the login again: one that retirement took meanwhile names no one any more, and a
    // late event of that user (a retried membership) must not bring them back.
    await tx`select 1 from public.users where id = ${known.user_id} for no key update`;
    known = await login();
    if (!known) return RETIRED;
  }
  let userId: string | undefined = known?.user_id;
  const email = address.verified ? address.email : undefined;
  if (!userId && email) {
    // The person holding the address first, then what they are: another Clerk user's
    // link being made meanwhile (its event locks the person too) is waited for and seen,
    // rather than both linking one person; a retirement committed meanwhile too.
    await tx`select 1 from public.users where lower(email) = ${email} for no key update`;
    const [match] = await tx`
      select u.id, exists (select 1 from public.platform_admins p where p.user_id = u.id) as is_admin,
             exists (select 1 from public.user_identities i where i.user_id = u.id and i.issuer = ${issuer()}) as clerk_login
      from public.users u where lower(u.email) = ${email}`;
    if (match?.is_admin) return undefined;
    if (match?.clerk_login) return ADDRESS_HELD;
    userId = match?.id;
  }
  if (!userId) {
    if (!email) return undefined;
    const [created] = await tx`
      insert into public.users (email, first_name, last_name, avatar_url)
      values (${email}, ${names.first ?? null}, ${names.last ?? null}, ${names.image ?? null}) returning id`;
    userId = created.id as string;
  } else {
    await tx`
      update public.users set
        -- An address another person already has here stays theirs: this person keeps
        -- theirs (the update is not refused for ever by the unique e-mail).
        email = case when ${email ?? null}::text is not null and not exists (
                       select 1 from public.users o where lower(o.email) = ${email ?? null}::text and o.id <> ${userId})
                     then ${email ?? null}::text else email end,
        first_name = coalesce(${names.first ?? null}::text, first_name),
        last_name = coalesce(${names.last ?? null}::text, last_name),
        avatar_url = coalesce(${names.image ?? null}::text, avatar_url),
        -- A retired person (no login left) whose address a new Clerk user verified is
        -- back; one with a login left was marked deleted by a platform admin and stays so
        -- (a profile edit is no way back in).
        status = case when status = 'deleted' and not exists (
                        select 1 from public.user_identities i where i.user_id = ${userId})
                      then 'active' else status end,
        deleted_at = case when status = 'deleted' and not exists (
                            select 1 from public.user_identities i where i.user_id = ${userId})
                          then null else deleted_at end
      where id = ${userId}`;
  }
  const id: string = userId;
  await tx`insert into public.user_identities (issuer, subject, user_id) values (${issuer()}, ${clerkId}, ${id}) on conflict do nothing`;
  return id;
}

async function tenantForOrg(tx: Tx, orgId: unknown): Promise<string | undefined> {
  // A payload without the organisation's id names none (and is no server error).
  if (typeof orgId !== 'string' || orgId === '') return undefined;
  const [link] = await tx`select tenant_id from public.tenant_org_links where issuer = ${issuer()} and org_id = ${orgId}`;
  return link?.tenant_id;
}

/** The tenant of an organisation that may still take members: a deleted one takes none
 *  (a late organizationMembership event after organization.deleted changes nothing). */
async function liveTenantForOrg(tx: Tx, orgId: unknown): Promise<string | undefined> {
  if (typeof orgId !== 'string' || orgId === '') return undefined;
  const [link] = await tx`
    select l.tenant_id from public.tenant_org_links l join public.tenants t on t.id = l.tenant_id
    where l.issuer = ${issuer()} and l.org_id = ${orgId} and t.status <> 'deleted'`;
  return link?.tenant_id;
}

/** The letters and digits of a Clerk id (org_2ab…), lower case, to tell slugs apart. */
const idSuffix = (id: unknown) => String(id).replace(/^[a-z]+_/i, '').toLowerCase().replace(/[^a-z0-9]/g, '').slice(-8) || 'org';

/** A tenant id's shape, which slugs may not have (X-Tenant-Id takes either). */
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A slug the tenants' check takes (3–63 letters, digits and single inner hyphens),
 *  from the organisation's slug or name; Clerk's own rules are looser (orgs may have
 *  no slug, names in any script). */
function slugFor(data: Payload): string {
  const source = typeof data.slug === 'string' && data.slug !== '' ? data.slug : String(data.name ?? '');
  const base = source.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 50).replace(/^-+|-+$/g, '');
  // One shaped like a tenant id is refused as a slug (X-Tenant-Id takes either).
  return base.length >= 3 && !UUID_SHAPE.test(base) ? base : `org-${base || idSuffix(data.id)}`;
}

/** The organisation's name as the tenants' check takes it: trimmed, at most 100
 *  characters; a blank or missing one is replaced by the slug (on update: kept). */
function orgName(data: Payload): string | undefined {
  const name = typeof data.name === 'string' ? data.name.trim().slice(0, 100).trim() : '';
  return name === '' ? undefined : name;
}

/** A person's name part as the users' check takes it (at most 100 characters). */
const namePart = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, 100) : undefined);

/** An avatar URL the users' check takes; a longer one is dropped, not cut. */
const imageUrl = (v: unknown) => (typeof v === 'string' && v !== '' && v.length <= 2048 ? v : undefined);

/** How long a membership naming an organisation or person not received yet is refused,
 *  for Svix to send it again. Svix sends events concurrently and in no set order: an
 *  organisation's creator's membership can come before organization.created, an
 *  invitee's before their user.created. Acknowledged as ignored, it was never sent again
 *  and the person never joined. Past this, one never announced is ignored. */
const AWAIT_RELATED_MS = 24 * 60 * 60 * 1000;

/** The event's time (its payload's `timestamp`, ms since the epoch), or null when it has
 *  none usable (Clerk always sends one). */
function eventTime(event: ClerkEvent): number | null {
  const at = event.timestamp;
  return typeof at === 'number' && Number.isFinite(at) && at > 0 ? at : null;
}

/** Refuses a recent event (409, retried by Svix; its transaction, inbox row included,
 *  rolls back); an old one, or one without its time, is ignored. */
function awaitRelated(event: ClerkEvent, what: 'organization' | 'user' | 'address'): 'ignored' {
  const at = eventTime(event);
  if (at !== null && Date.now() - at < AWAIT_RELATED_MS) {
    throw conflict(
      'related_event_pending',
      what === 'address'
        ? "This user's address still belongs to another Clerk user here; send the event again once that user's change has arrived"
        : `The ${what} this membership names has not been received yet; send the event again later`,
    );
  }
  return 'ignored';
}

/** The object a Clerk event is about, as private.clerk_object_versions names it; null
 *  for events this sync does not apply. */
function clerkObject(type: string, d: Payload, orgsAsTenants: boolean): string | null {
  const [kind] = type.split('.');
  // Ids as Clerk writes them (user_…, org_…); without them an event names no object, and
  // is not ordered against others (it is ignored where it is applied).
  const id = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const user = id(d.id);
  if (kind === 'user') return user ? `user:${user}` : null;
  if (kind === 'organization') return orgsAsTenants && user ? `organization:${user}` : null;
  const org = id(d.organization?.id);
  const member = id(d.public_user_data?.user_id);
  if (kind === 'organizationMembership') return org && member ? `membership:${org}:${member}` : null;
  return null;
}

/** Whether this event is no older than the newest applied to its object (and, if so, it
 *  becomes that newest, under the object's row lock for the rest of the transaction).
 *  Svix retries an event for days, after the ones that followed it: a late
 *  organizationMembership.created must not undo the .deleted that came after it. An event
 *  without its time (Clerk always sends one) is applied as it comes. */
async function newestForObject(tx: Tx, event: ClerkEvent, object: string | null): Promise<boolean> {
  const at = eventTime(event);
  if (object === null || at === null) return true;
  const [fresh] = await tx`
    insert into private.clerk_object_versions (issuer, object, event_at, deleted)
    values (${issuer()}, ${object.slice(0, 300)}, to_timestamp(${at}::double precision / 1000),
            ${event.type === 'user.deleted' || event.type === 'organization.deleted'})
    -- An organisation once deleted (or its tenant purged) stays so: Clerk never reuses its
    -- id, and a later rename must not make it a tenant again (20261207190000).
    on conflict (issuer, object) do update set event_at = excluded.event_at,
      deleted = excluded.deleted or (clerk_object_versions.deleted and clerk_object_versions.object like 'organization:%')
      where clerk_object_versions.event_at <= excluded.event_at
    returning 1 as fresh`;
  return !!fresh;
}

/** Whether the newest event applied to this Clerk user deleted them. */
async function userDeleted(tx: Tx, clerkUserId: unknown): Promise<boolean> {
  return await objectDeleted(tx, `user:${String(clerkUserId)}`);
}

/** Whether this Clerk organisation is gone: deleted at Clerk, or its tenant purged. */
async function organizationGone(tx: Tx, orgId: string): Promise<boolean> {
  return await objectDeleted(tx, `organization:${orgId}`);
}

async function objectDeleted(tx: Tx, object: string): Promise<boolean> {
  const [v] = await tx`select deleted from private.clerk_object_versions where issuer = ${issuer()} and object = ${object}`;
  return v?.deleted === true;
}

export async function applyClerkEvent(tx: Tx, event: ClerkEvent): Promise<'applied' | 'ignored'> {
  const d = event.data ?? {};
  const orgsAsTenants = env('CLERK_ORGS_AS_TENANTS') !== 'false';
  if (!(await newestForObject(tx, event, clerkObject(event.type, d, orgsAsTenants)))) return 'ignored';
  // A user or organisation event without the object's id names nothing to change (it was
  // a 500 where the id went into a query).
  const kind = event.type.split('.')[0];
  if ((kind === 'user' || kind === 'organization') && (typeof d.id !== 'string' || d.id === '')) return 'ignored';
  switch (event.type) {
    case 'user.created':
    case 'user.updated': {
      const userId = await upsertUser(tx, d.id, primaryEmail(d), {
        first: namePart(d.first_name),
        last: namePart(d.last_name),
        image: imageUrl(d.image_url),
      });
      // The address still names another Clerk user's person: refused until that user's
      // own change of address arrives (Svix sends this again), then created afresh.
      if (userId === ADDRESS_HELD) return awaitRelated(event, 'address');
      return userId && userId !== RETIRED ? 'applied' : 'ignored';
    }
    case 'user.deleted': {
      // Memberships go; tickets and the audit trail stay with the (deleted) person. Whom
      // the login named is remembered with the deletion: a membership removal delivered
      // after it (the login gone) still finds them (20261207191000).
      const [named] = await tx`select user_id from public.user_identities where issuer = ${issuer()} and subject = ${d.id}`;
      const [{ retired }] = await tx`select private.retire_identity(${issuer()}, ${d.id}) as retired`;
      if (named) {
        await tx`update private.clerk_object_versions set user_id = ${named.user_id}, retired_at = now()
                 where issuer = ${issuer()} and object = ${`user:${d.id}`}`;
      }
      return retired ? 'applied' : 'ignored';
    }
    case 'organization.created':
    case 'organization.updated': {
      if (!orgsAsTenants) return 'ignored';
      const tenantId = await tenantForOrg(tx, d.id);
      const name = orgName(d);
      if (tenantId) {
        if (name) await tx`update public.tenants set name = ${name} where id = ${tenantId}`;
        return 'applied';
      }
      // Gone (deleted at Clerk, or its tenant purged here): no tenant made for it again.
      if (await organizationGone(tx, d.id)) return 'ignored';
      let slug = slugFor(d);
      const taken = async () => (await tx`select 1 from public.tenants where slug = ${slug}`).length > 0;
      if (await taken()) slug = `${slug}-${idSuffix(d.id)}`;
      if (await taken()) slug = `${slug.slice(0, 50).replace(/-+$/, '')}-${crypto.randomUUID().slice(0, 8)}`;
      const [t] = await tx`insert into public.tenants (name, slug) values (${name ?? slug}, ${slug}) returning id`;
      await tx`insert into public.tenant_org_links (tenant_id, issuer, org_id) values (${t.id}, ${issuer()}, ${d.id})`;
      return 'applied';
    }
    case 'organization.deleted': {
      const tenantId = orgsAsTenants ? await tenantForOrg(tx, d.id) : undefined;
      if (!tenantId) return 'ignored';
      await tx`update public.tenants set status = 'deleted', deleted_at = coalesce(deleted_at, now()) where id = ${tenantId}`;
      return 'applied';
    }
    case 'organizationMembership.created':
    case 'organizationMembership.updated': {
      const orgId = d.organization?.id;
      const tenantId = await liveTenantForOrg(tx, orgId);
      const pud = d.public_user_data ?? {};
      if (!pud.user_id) return 'ignored';
      if (!tenantId) {
        // An organisation never received is waited for; a deleted one takes no members.
        const unseen = orgsAsTenants && typeof orgId === 'string' && orgId !== '' && !(await tenantForOrg(tx, orgId)) &&
          !(await organizationGone(tx, orgId));
        return unseen ? awaitRelated(event, 'organization') : 'ignored';
      }
      // A membership's identifier is not known to be verified: only a user Clerk already
      // told us about (user.created) is linked here. Its copy of the user's names is not
      // applied: it may be older than the user's own newest event, which owns them (a
      // retried membership event set a renamed person's old name back).
      const userId = await upsertUser(tx, pud.user_id, { email: undefined, verified: false }, {});
      if (userId === RETIRED) return 'ignored';
      // A user whose deletion was applied already (a retry of this event after it): no one
      // to wait for.
      if (!userId && await userDeleted(tx, pud.user_id)) return 'ignored';
      if (!userId || userId === ADDRESS_HELD) return awaitRelated(event, 'user');
      await tx`
        insert into public.memberships (tenant_id, user_id, role) values (${tenantId}, ${userId}, ${roleFor(d.role)})
        on conflict (tenant_id, user_id) do update set role = excluded.role`;
      return 'applied';
    }
    case 'organizationMembership.deleted': {
      const tenantId = await tenantForOrg(tx, d.organization?.id);
      const subject = String(d.public_user_data?.user_id ?? '');
      // By the login, else, the user deleted since, by the person their deletion named —
      // then only a membership they had when the deletion was applied (20261207197000): one
      // they were given later (an invitation, through another login) is not this
      // removal's to take.
      const [known] = await tx`
        select user_id, null::timestamptz as deleted_at from public.user_identities
        where issuer = ${issuer()} and subject = ${subject}
        union all
        select v.user_id, coalesce(v.retired_at, v.event_at) from private.clerk_object_versions v
        where v.issuer = ${issuer()} and v.object = ${`user:${subject}`} and v.deleted and v.user_id is not null
        limit 1`;
      if (!tenantId || !known) return 'ignored';
      // Nor one the tenant gave them after Clerk removed them (an invitation accepted since:
      // Svix retries a removal for days, and a late one took the new membership away) —
      // one the acceptance made, not one it found (an old invitation accepted by someone
      // already a member changes no membership, and kept the one Clerk removed for good).
      const time = eventTime(event);
      const at = time === null ? null : new Date(time);
      await tx`delete from public.memberships m where m.tenant_id = ${tenantId} and m.user_id = ${known.user_id}
                 and (${known.deleted_at}::timestamptz is null or m.created_at <= ${known.deleted_at}::timestamptz)
                 and (${at}::timestamptz is null or not exists (
                   select 1 from public.invitations i
                   where i.tenant_id = m.tenant_id and i.accepted_by = m.user_id and i.accepted_at > ${at}::timestamptz
                     and m.created_at >= i.accepted_at))`;
      return 'applied';
    }
    default:
      return 'ignored'; // unknown types are acknowledged, not applied
  }
}
