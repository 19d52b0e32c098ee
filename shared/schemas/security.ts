// How each kind of caller proves itself, as the OpenAPI documents say it: the security
// schemes (a document carries those its operations name, shared/http.ts) and the
// requirement each kind of route lists. A requirement is a list of alternatives, any one
// of which is enough; the schemes inside one alternative are all needed together.
// The responses name the error codes the checks answer with (shared/auth/service.ts,
// shared/webhooks/clerk.ts, shared/webhooks/chatwoot.ts).
import { errorResponse } from './common.ts';

type SecurityScheme =
  | { type: 'http'; scheme: 'bearer'; bearerFormat?: string; description: string }
  | { type: 'apiKey'; in: 'header' | 'query'; name: string; description: string };

const header = (name: string, description: string): SecurityScheme => ({ type: 'apiKey', in: 'header', name, description });

const SERVICE_CREDENTIAL = 'the legacy service_role JWT, a new `sb_secret_…` key, or an expiring HS256 token ' +
  'with role service_role signed with the project JWT secret';

export const securitySchemes = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An access token from Supabase Auth, Clerk or SuperTokens',
  },
  apiKey: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'tpk_live_<key id>_<secret>',
    description: "A tenant's API key for server-to-server clients, as Authorization: Bearer. It acts only in its " +
      'tenant and only on operations naming the scope it holds (`x-api-key-scope`); elsewhere 403 `insufficient_scope`. ' +
      'Revoked or expired: 401 `api_key_revoked` / `api_key_expired`; unknown: 401 `invalid_api_key`.',
  },
  serviceKey: {
    type: 'http',
    scheme: 'bearer',
    description: `The service credential as Authorization: Bearer — ${SERVICE_CREDENTIAL}. Never accepted as a user.`,
  },
  serviceApiKey: header(
    'apikey',
    `The service credential in the apikey header, read when there is no Authorization bearer — ${SERVICE_CREDENTIAL}.`,
  ),
  cronSecret: header(
    'x-cron-secret',
    "The scheduler's shared secret, PROVISIONER_CRON_SECRET; refused everywhere while that is not set.",
  ),
  telephonySecret: header(
    'x-telephony-secret',
    "The telephony provider's shared secret, VOICE_TELEPHONY_SECRET; refused everywhere while that is not set.",
  ),
  svixId: header('svix-id', 'Clerk (Svix, the Standard Webhooks scheme): the message id, part of what is signed.'),
  svixTimestamp: header(
    'svix-timestamp',
    'Clerk (Svix): Unix seconds when the message was signed; more than 5 minutes away from now is refused.',
  ),
  svixSignature: header(
    'svix-signature',
    'Clerk (Svix): space-separated `v1,<base64>` signatures, each HMAC-SHA256 of "{svix-id}.{svix-timestamp}.{body}" ' +
      'under the endpoint secret CLERK_WEBHOOK_SECRET (`whsec_…`); one matching is enough (secret rotation).',
  ),
  chatwootSignature: header(
    'x-chatwoot-signature',
    'Chatwoot: `sha256=<hex>`, HMAC-SHA256 of "{x-chatwoot-timestamp}.{body}" under the webhook secret of the tenant\'s ' +
      'Chatwoot service. Where that secret is set, only a signed request is accepted.',
  ),
  chatwootTimestamp: header(
    'x-chatwoot-timestamp',
    'Chatwoot: Unix seconds when the event was signed; more than 5 minutes away from now is refused.',
  ),
  chatwootUrlToken: {
    type: 'apiKey',
    in: 'query',
    name: 'token',
    description: "Chatwoot versions that do not sign: the tenant's secret URL token (HMAC of the tenant id under " +
      'CHATWOOT_WEBHOOK_KEY). Accepted only while the tenant has no Chatwoot webhook secret.',
  },
} satisfies Record<string, SecurityScheme>;

export type SecuritySchemeName = keyof typeof securitySchemes;

/** A requirement from its alternatives, each the names of the schemes it needs together. */
const anyOf = (...alternatives: SecuritySchemeName[][]): Record<string, string[]>[] =>
  alternatives.map((names) => Object.fromEntries(names.map((name) => [name, []])));

export const security = {
  /** A signed-in person's access token. */
  user: anyOf(['bearerAuth']),
  /** A person's access token or a tenant API key holding the route's scope. */
  userOrApiKey: anyOf(['bearerAuth'], ['apiKey']),
  /** The service credential (either header) or the scheduler's secret. */
  machine: anyOf(['serviceKey'], ['serviceApiKey'], ['cronSecret']),
  /** The service credential (either header) or the telephony provider's secret; or a
   *  tenant API key with the route's scope, for that tenant's numbers and calls only. */
  telephony: anyOf(['serviceKey'], ['serviceApiKey'], ['telephonySecret'], ['apiKey']),
  /** All three Svix headers, together. */
  clerk: anyOf(['svixId', 'svixTimestamp', 'svixSignature']),
  /** A signature with its timestamp, or (without a webhook secret) the URL token. */
  chatwoot: anyOf(['chatwootSignature', 'chatwootTimestamp'], ['chatwootUrlToken']),
};

/** The answers of a machine route's credential check. */
export const machineErrors = {
  401: errorResponse(
    '`service_credential_required`: no service credential (Authorization: Bearer or apikey) and no matching ' +
      'x-cron-secret; a user token is refused too',
  ),
} as const;

/** The answers of a telephony route's credential check. */
export const telephonyErrors = {
  401: errorResponse(
    '`telephony_credential_required`: no service credential (Authorization: Bearer or apikey), no matching ' +
      'x-telephony-secret and no tenant API key; a user token is refused too. A tenant API key that does not verify: ' +
      '`invalid_api_key`, `api_key_revoked`, `api_key_expired`, `api_key_owner_inactive`',
  ),
} as const;

/** The answers of the Clerk webhook's signature check. */
export const clerkErrors = {
  400: errorResponse(
    '`missing_signature`: svix-id, svix-timestamp or svix-signature is missing; `invalid_payload`: the signed ' +
      'body is not a Clerk event',
  ),
  401: errorResponse('`invalid_signature`: no signature matches, or the timestamp is more than 5 minutes away'),
  409: errorResponse(
    '`related_event_pending`: a membership names an organisation or user not received yet (Svix sends events ' +
      'in no set order); nothing was recorded, and Svix sends it again. Past a day, it is ignored',
  ),
  503: errorResponse(
    '`not_configured`: CLERK_WEBHOOK_SECRET is not set (nothing is accepted), or CLERK_ISSUER, needed to map users',
  ),
} as const;

/** The answers of the Chatwoot webhook's signature or token check. */
export const chatwootErrors = {
  400: errorResponse('`invalid_payload`: the authenticated body is not a Chatwoot event'),
  401: errorResponse(
    '`invalid_signature`: a missing or wrong signature or token, or a tenant without Chatwoot (the same answer, so ' +
      'the URL tells nothing about tenants); `stale_timestamp`: correctly signed, but more than 5 minutes away from now',
  ),
  403: errorResponse(
    "`tenant_suspended`: a genuine event for a suspended tenant; `feature_not_in_plan`: the tenant's plan no longer includes Chatwoot",
  ),
  503: errorResponse(
    '`not_configured`: a URL token was sent but neither CHATWOOT_WEBHOOK_KEY nor PROVISIONING_ENCRYPTION_KEY is set',
  ),
} as const;
