// Request and response shapes of the voice API (issue 14). The database checks the same
// rules again (E.164 numbers, the LLM configuration, the call status machine); these
// shapes make bad input a clear 422 before it reaches SQL.
import { z } from '@hono/zod-openapi';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import {
  CursorParam,
  IsoTimestamp,
  jsonbTextBytes,
  JsonObject,
  QueryInteger,
  QueryTimestamp,
  SignedUrlSchema,
  Text,
  Uuid,
} from '../../shared/schemas/common.ts';
import { MAX_UPLOAD_BYTES } from '../../shared/storage.ts';
import { CustomFieldValues, DepartmentSchema, PrioritySchema, Tags } from '../../shared/schemas/ticket-fields.ts';

/** E.164: + and 7 to 15 digits, the first not 0. */
export const E164_PATTERN = /^\+[1-9][0-9]{6,14}$/;
export const E164 = z.string().regex(E164_PATTERN, 'must be an E.164 number (+ and 7 to 15 digits)')
  .openapi({ example: '+14155550123' });
/** A number as a provider reports it (may lack the +, or be short for internal lines). */
export const REPORTED_NUMBER_PATTERN = /^\+?[0-9]{3,15}$/;
/** A caller ID as the network gives it: a number, or for a withheld caller `anonymous`,
 *  `restricted`, a SIP URI… Bounded, and never refused for its form. */
const CallerId = z.string().max(256);

/** A number in a query string. A `+` left unencoded in a URL's query is a space once
 *  decoded (form encoding), so `?to=+14155550123` arrives as ` 14155550123`; a leading
 *  space before a digit can only have been that `+`, and is read as one. Without this, a
 *  provider's URL template that does not percent-encode the number was refused (422), and
 *  its caller ID routed the call to no customer. */
const inQuery = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && /^ [0-9]/.test(v) ? `+${v.slice(1)}` : v), schema);

// ---------------------------------------------------------------- routing

export const RouteQuery = z.object({
  to: inQuery(E164).openapi({ description: 'The dialled number', param: { name: 'to', in: 'query' } }),
  // The caller ID as the network gives it: withheld callers come as "anonymous", "unknown",
  // "restricted" or no number at all, and such a call must still route (to no customer).
  from: inQuery(CallerId).optional().openapi({
    description: "The caller's number as the network reports it. Only an E.164 number is looked up among the tenant's " +
      'customers; anything else (a withheld caller ID such as `anonymous`) routes the call with no customer.',
    param: { name: 'from', in: 'query' },
    example: '+14155550123',
  }),
});

/** The database's bound on a whole configuration: 65,536 bytes of its jsonb text. */
export const LLM_CONFIG_MAX_BYTES = 65_536;
export const LlmConfigSchema = z.object({
  model: Text.min(1).max(200),
  system_prompt: Text.max(20000),
  temperature: z.number().min(0).max(2).optional(),
  // Each tool bounded by the whole's bound only, as the database bounds them: a tool of
  // 20,000 bytes written through the table came back from GET and was refused when sent
  // back unchanged.
  tools: z.array(JsonObject(LLM_CONFIG_MAX_BYTES)).max(50).optional(),
})
  // A setting the platform does not know is refused by name, not dropped in silence.
  .strict()
  // Each part may be within its bound and the whole not: said here, not as the check's 422.
  .refine((config) => jsonbTextBytes(config) <= LLM_CONFIG_MAX_BYTES, {
    message: `at most ${LLM_CONFIG_MAX_BYTES} bytes in all (as JSON)`,
  })
  .openapi('LlmConfig', { description: `At most ${LLM_CONFIG_MAX_BYTES} bytes in all, as JSON` });

export const RouteAnswerSchema = z.object({
  tenant: z.object({ id: Uuid, name: z.string() }),
  agent: z.object({
    id: Uuid,
    name: z.string(),
    phone: z.string(),
    voice_id: z.string(),
    llm_config: z.record(z.string(), z.unknown()),
    greeting: z.string().nullable(),
    language: z.string(),
    knowledge_base_id: Uuid.nullable(),
  }),
  customer: z.object({
    id: Uuid,
    phone: z.string(),
    name: z.string().nullable(),
    email: z.string().nullable(),
    notes: z.string().nullable(),
    tags: z.array(z.string()),
    recording_consent: z.boolean(),
    marketing_consent: z.boolean(),
    recording_consent_at: z.string().openapi({ format: 'date-time' }).nullable(),
  }).nullable(),
}).openapi('RouteAnswer');

// ---------------------------------------------------------------- call events

const EventBase = {
  tenant_id: Uuid,
  // `manual:` ids are the calls people log by hand (20261202190200_voice_provider_calls.sql):
  // the provider's never meet one.
  provider_call_id: Text.min(1).max(200).refine(
    (id) => !id.startsWith('manual:'),
    'must not start with manual: (calls people log)',
  ),
};

export const CallStartedEvent = z.object({
  type: z.literal('call.started'),
  ...EventBase,
  agent_id: Uuid,
  direction: z.enum(['inbound', 'outbound']).default('inbound'),
  // Kept on the call when they are numbers; a withheld caller ID is no number and is kept
  // as none (the call is still recorded).
  from: CallerId.optional().openapi({ description: 'The caller ID; anything but a number is recorded as none' }),
  to: CallerId.optional().openapi({ description: 'The number called; anything but a number is recorded as none' }),
  started_at: IsoTimestamp.optional().openapi({ description: 'When the call started; none, or a time ahead of now, is now' }),
  answered: z.boolean().default(false),
}).strict();

export const SegmentSchema = z.object({
  seq: z.number().int().min(0).max(1_000_000),
  speaker: z.enum(['agent', 'customer', 'system']),
  content: Text.min(1).max(10000),
  offset_ms: z.number().int().min(0).max(86_400_000).default(0),
}).strict();

export const TranscriptEvent = z.object({
  type: z.literal('transcript.segments'),
  ...EventBase,
  // A batch: stored by seq, so batches may arrive in any order and overlap (a segment
  // already stored changes nothing). One seq twice in one batch is ambiguous: refused.
  segments: z.array(SegmentSchema).min(1).max(500)
    .refine((segs) => new Set(segs.map((x) => x.seq)).size === segs.length, 'each seq at most once in an event'),
}).strict();

export const CallEndedEvent = z.object({
  type: z.literal('call.ended'),
  ...EventBase,
  status: z.enum(['completed', 'failed', 'missed']),
  ended_at: IsoTimestamp.optional().openapi({ description: 'When the call ended; a time ahead of now is now' }),
  duration_seconds: z.number().int().min(0).max(7 * 86400).optional(),
  outcome: Text.max(200).optional(),
  cost: z.number().min(0).max(1e6).optional(),
  summary: Text.max(20000).optional(),
  recording_path: Text.max(1024).optional(),
}).strict();

/** A ringing call was picked up (20261202190300_voice_call_answered.sql): for a provider
 *  that sends the transcript only at the end, without it the call stayed ringing and the
 *  stale-call sweep ended it as missed. */
export const CallAnsweredEvent = z.object({
  type: z.literal('call.answered'),
  ...EventBase,
  answered_at: IsoTimestamp.optional().openapi({
    description: 'When it was answered; none is now, a time before the start is the start, ahead of now is now',
  }),
}).strict();

export const CallEventBody = z.discriminatedUnion('type', [CallStartedEvent, CallAnsweredEvent, TranscriptEvent, CallEndedEvent])
  .openapi('CallEvent');

export const CallEventResult = z.object({
  applied: z.boolean().openapi({ description: 'False for a repeated or late event, which changed nothing' }),
  segments_added: z.number().int().optional(),
  call_id: Uuid,
  status: z.enum(['ringing', 'in_progress', 'completed', 'failed', 'missed']),
}).openapi('CallEventResult');

/** Any event for a call its tenant deleted in the last 30 days (by an admin, or erasing
 *  its customer; 20261204110000_voice_call_tombstones.sql): taken and dropped, as a late
 *  event is. A 2xx, so the sender stops retrying; never the call again. */
export const CallEventDeleted = z.object({
  applied: z.literal(false),
  deleted: z.literal(true),
  provider_call_id: z.string(),
}).openapi('CallEventDeleted');

/** An answer, segments or an end that overtook its call's start
 *  (20261203140000_voice_early_events.sql): held, and applied when the start arrives. */
export const CallEventHeld = z.object({
  held: z.literal(true),
  provider_call_id: z.string(),
  held_until: z.string().openapi({
    format: 'date-time',
    description: 'When it is dropped if its call has not started by then (a start after that finds nothing held)',
  }),
}).openapi('CallEventHeld');

// ---------------------------------------------------------------- call recordings

/** The audio a call's recording may be, and the extension its object gets (the bucket
 *  takes these types only: 20261203251000_voice_call_recording_objects.sql). */
export const RECORDING_EXTENSIONS = {
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'audio/ogg': 'ogg',
  'audio/webm': 'webm',
  'audio/mp4': 'm4a',
  'audio/flac': 'flac',
} as const;
export type RecordingType = keyof typeof RECORDING_EXTENSIONS;
const RecordingTypeSchema = z.enum(Object.keys(RECORDING_EXTENSIONS) as [RecordingType, ...RecordingType[]]);

export const RecordingUploadBody = z.object({
  ...EventBase,
  content_type: RecordingTypeSchema,
  size_bytes: z.number().int().min(1).max(MAX_UPLOAD_BYTES).openapi({
    description: 'The exact size of the recording to upload (at most 50 MiB)',
  }),
}).strict();
export const RecordingUploadSchema = z.object({
  call_id: Uuid,
  recording_object: z.string().openapi({
    description: 'Where the recording is kept, in the `call-recordings` bucket: `<tenant_id>/<call_id>/recording.<ext>`',
  }),
  upload: SignedUrlSchema,
}).openapi('RecordingUpload');
export const CallRecordingSchema = z.object({
  call_id: Uuid,
  content_type: RecordingTypeSchema,
  download: SignedUrlSchema,
}).openapi('CallRecording');

// ---------------------------------------------------------------- people's routes

const Instant = z.string().openapi({ format: 'date-time' });
export const IdParam = z.object({ id: Uuid.openapi({ param: { name: 'id', in: 'path' } }) });
export const KbParam = z.object({ kbId: Uuid.openapi({ param: { name: 'kbId', in: 'path' } }) });
export const KbDocumentParam = KbParam.extend({ id: Uuid.openapi({ param: { name: 'id', in: 'path' } }) });
const Limit = QueryInteger(1, 100).default(50);

export const AgentSchema = z.object({
  id: Uuid,
  tenant_id: Uuid,
  name: z.string(),
  phone: z.string(),
  voice_id: z.string(),
  llm_config: LlmConfigSchema,
  greeting: z.string().nullable(),
  language: z.string(),
  active: z.boolean(),
  knowledge_base_id: Uuid.nullable(),
  created_at: Instant,
  updated_at: Instant,
}).openapi('VoiceAgent');

/** A number in the one form the import writes it: a number libphonenumber-js knows
 *  becomes its canonical E.164 (`+330612345678`, the French trunk 0 kept, is
 *  `+33612345678`, as `06 12 34 56 78` imported with region FR), so one person is not two
 *  records and /route finds them by the number the network reports; a number it does not
 *  know is kept as given. */
const CanonicalPhone = E164.transform((n) => {
  const parsed = parsePhoneNumberFromString(n);
  // A canonical form the column's rule refuses (`+4301117` is `+431117`, six digits) is
  // no better than the number as given.
  return parsed?.isValid() && E164_PATTERN.test(parsed.number) ? parsed.number : n;
});

// The fields a person sets, without defaults: an update changes only what it names.
const AgentFields = z.object({
  name: Text.min(1).max(100),
  // Canonical like a customer's: `+330612345678` and `+33612345678` are one line, which
  // one tenant holds (and the network reports the canonical one).
  phone: CanonicalPhone,
  voice_id: Text.min(1).max(200),
  llm_config: LlmConfigSchema,
  greeting: Text.max(2000).nullable(),
  language: z.string().max(35).regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/),
  active: z.boolean(),
  knowledge_base_id: Uuid.nullable(),
});
export const CreateAgentBody = AgentFields.extend({
  greeting: AgentFields.shape.greeting.optional(),
  language: AgentFields.shape.language.default('en'),
  active: AgentFields.shape.active.default(true),
  knowledge_base_id: AgentFields.shape.knowledge_base_id.optional(),
}).strict();
export const UpdateAgentBody = AgentFields.partial().extend({
  take_over: z.boolean().optional().openapi({
    description: "With the agent active on its number (this change's or its own): another active agent of the tenant " +
      'on that number is parked in the same transaction, so the line passes from one to the other with no moment ' +
      'without an agent (without it, 409 `already_exists`)',
  }),
}).strict()
  .refine((b) => Object.keys(b).some((k) => k !== 'take_over'), 'name at least one field to change')
  .openapi({ minProperties: 1 });

/** An agent as a read answers it: for a customer (role user) without its LLM configuration,
 *  which is staff's (the system prompt, the tools with their servers' credentials). */
export const AgentReadSchema = AgentSchema.extend({
  llm_config: LlmConfigSchema.nullable().openapi({
    description: 'The LLM configuration (system prompt, tools); null when a customer (role user) reads the agent',
  }),
}).openapi('VoiceAgentRead');
export const AgentPageSchema = z.object({ items: z.array(AgentReadSchema), next: z.string().nullable() });
export const AgentListQuery = z.object({
  active: z.enum(['true', 'false']).optional(),
  limit: Limit,
  cursor: CursorParam,
});

export const CustomerSchema = z.object({
  id: Uuid,
  tenant_id: Uuid,
  phone: z.string(),
  name: z.string().nullable(),
  email: z.string().nullable(),
  notes: z.string().nullable().openapi({ description: "Staff's notes; null when a customer reads their own record" }),
  tags: z.array(z.string()).openapi({ description: "Staff's tags; empty when a customer reads their own record" }),
  user_id: Uuid.nullable(),
  recording_consent: z.boolean(),
  recording_consent_at: Instant.nullable(),
  marketing_consent: z.boolean(),
  marketing_consent_at: Instant.nullable(),
  created_at: Instant,
  updated_at: Instant,
}).openapi('VoiceCustomer');

/** A customer's tags as people type them and as the import reads a tags cell: each
 *  trimmed, blanks dropped, each once (first place kept). The API took `[" vip", "vip",
 *  "  "]` as three tags, which a re-import of the same person replaced with one. */
export const customerTags = (tags: string[]) => [...new Set(tags.map((t) => t.trim()).filter((t) => t !== ''))];

/** A customer's bounds, in characters (the columns' checks); the import checks the same. */
export const CUSTOMER_MAX = { name: 200, email: 320, notes: 10000, tags: 50, tag: 50 } as const;

const CustomerFields = z.object({
  phone: CanonicalPhone,
  name: Text.max(CUSTOMER_MAX.name).nullable(),
  email: z.email().max(CUSTOMER_MAX.email).nullable(),
  notes: Text.max(CUSTOMER_MAX.notes).nullable(),
  tags: z.array(Text.max(CUSTOMER_MAX.tag)).max(CUSTOMER_MAX.tags).transform(customerTags),
  user_id: Uuid.nullable(),
  recording_consent: z.boolean(),
  marketing_consent: z.boolean(),
});
export const CreateCustomerBody = CustomerFields.partial().extend({
  phone: CanonicalPhone,
  tags: CustomerFields.shape.tags.default([]),
  recording_consent: z.boolean().default(false),
  marketing_consent: z.boolean().default(false),
}).strict();
export const UpdateCustomerBody = CustomerFields.partial().strict()
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change')
  .openapi({ minProperties: 1 });
export const CustomerListQuery = z.object({
  phone: inQuery(CanonicalPhone).optional(),
  limit: Limit,
  cursor: CursorParam,
});
export const CustomerPageSchema = z.object({ items: z.array(CustomerSchema), next: z.string().nullable() });
/** What an erasure removed in its request (private.voice_customer_erase): counts, the
 *  calls, and the tickets opened from them, which the support workflow keeps; the audit
 *  trail's images follow in a job. */
export const CustomerErasureSchema = z.object({
  customer_id: Uuid,
  erased: z.object({
    calls: z.number().int(),
    transcript_segments: z.number().int(),
    recordings: z.number().int().openapi({ description: 'Recordings whose objects are deleted by jobs' }),
    held_events: z.number().int().openapi({ description: "The provider's events still held for those calls" }),
    webhook_events: z.number().int().openapi({
      description: 'Outbound events about the customer or the calls, with their deliveries',
    }),
  }),
  call_ids: z.array(Uuid),
  tickets_kept: z.array(Uuid).openapi({ description: 'Tickets opened from the erased calls: kept, for the ticket workflow' }),
  audit_trail: z.enum(['queued']).openapi({
    description: 'The row images of their audit entries are erased by a job (voice-erasure-trail), in batches, after the request',
  }),
}).openapi('VoiceCustomerErasure');

const CallStatus = z.enum(['ringing', 'in_progress', 'completed', 'failed', 'missed']);
export const CallSchema = z.object({
  id: Uuid,
  tenant_id: Uuid,
  agent_id: Uuid,
  customer_id: Uuid.nullable(),
  direction: z.enum(['inbound', 'outbound']),
  status: CallStatus,
  provider_call_id: z.string(),
  from_number: z.string().nullable(),
  to_number: z.string().nullable(),
  started_at: Instant,
  answered_at: Instant.nullable(),
  ended_at: Instant.nullable(),
  timed_out_at: Instant.nullable().openapi({
    description: 'When the stale-call sweep ended the call for want of its end event (ringing 15 minutes, or 4 hours ' +
      "without an event); null once the provider's end came, which replaces the provisional end",
  }),
  duration_seconds: z.number().int().nullable(),
  outcome: z.string().nullable(),
  summary: z.string().nullable(),
  recording_path: z.string().nullable().openapi({ description: 'Where the provider keeps the recording (its own text)' }),
  recording_object: z.string().nullable().openapi({
    description: "The recording in this platform's storage, once the provider asked to upload it " +
      '(`GET /calls/{id}/recording` says whether it is there)',
  }),
  cost: z.number().nullable(),
  ticket_id: Uuid.nullable(),
  created_at: Instant,
  updated_at: Instant,
}).openapi('VoiceCall');
export const SegmentOutSchema = z.object({
  seq: z.number().int(),
  speaker: z.enum(['agent', 'customer', 'system']),
  content: z.string(),
  offset_ms: z.number().int(),
}).openapi('TranscriptSegment');
/** Segments per page of a transcript: a call's transcript has no bound but seq's
 *  (1,000,000 segments of up to 10,000 characters), so it is read in pages. */
export const TRANSCRIPT_PAGE_MAX = 500;
export const TRANSCRIPT_PAGE_DEFAULT = 200;
export const CallDetailSchema = CallSchema.extend({
  transcript: z.array(SegmentOutSchema).openapi({
    description: `The transcript's first ${TRANSCRIPT_PAGE_DEFAULT} segments, in order`,
  }),
  transcript_next: z.string().nullable().openapi({
    description: 'Null when that is the whole transcript; else the `cursor` of GET /calls/{id}/transcript for the rest',
  }),
}).openapi('VoiceCallDetail');
export const TranscriptQuery = z.object({
  limit: QueryInteger(1, TRANSCRIPT_PAGE_MAX).default(TRANSCRIPT_PAGE_DEFAULT),
  cursor: z.string().regex(/^(0|[1-9][0-9]{0,6})$/, "the previous page's next").optional().openapi({
    description: "The previous page's `next` (or the call's `transcript_next`): the segments after it",
  }),
});
export const TranscriptPageSchema = z.object({ items: z.array(SegmentOutSchema), next: z.string().nullable() })
  .openapi('TranscriptPage');
export const HeldEventsQuery = z.object({
  provider_call_id: Text.min(1).max(200).optional().openapi({ description: "Only one call's" }),
  limit: QueryInteger(1, 100).default(50),
  cursor: z.string().regex(/^(0|[1-9][0-9]{0,17})$/, "the previous page's next").optional().openapi({
    description: "The previous page's `next`: the events held after it",
  }),
});
export const HeldEventSchema = z.object({
  provider_call_id: z.string(),
  type: z.enum(['call.answered', 'transcript.segments', 'call.ended']),
  payload: z.record(z.string(), z.unknown()).openapi({
    description: 'The event as held: its fields after validation (those it left out as null, a time ahead of now as ' +
      'now), less tenant_id, type and provider_call_id',
  }),
  received_at: Instant,
  held_until: Instant.openapi({ description: 'When it is dropped if its call has not started by then' }),
}).openapi('VoiceHeldEvent');
export const HeldEventPageSchema = z.object({
  items: z.array(HeldEventSchema),
  next: z.string().nullable().openapi({ description: 'The `cursor` of the next page; null on the last' }),
}).openapi('VoiceHeldEventPage');
export const CallListQuery = z.object({
  agent_id: Uuid.optional(),
  customer_id: Uuid.optional(),
  status: CallStatus.optional(),
  started_after: QueryTimestamp.optional(),
  started_before: QueryTimestamp.optional(),
  q: Text.min(1).max(200).optional().openapi({ description: 'Words to find in the transcript' }),
  limit: Limit,
  cursor: CursorParam,
});
export const CallPageSchema = z.object({ items: z.array(CallSchema), next: z.string().nullable() });

export const KnowledgeBaseSchema = z.object({
  id: Uuid,
  tenant_id: Uuid,
  name: z.string(),
  description: z.string().nullable(),
  created_at: Instant,
  updated_at: Instant,
}).openapi('KnowledgeBase');
export const CreateKnowledgeBaseBody = z.object({
  name: Text.min(1).max(100),
  description: Text.max(2000).nullable().optional(),
}).strict();
export const UpdateKnowledgeBaseBody = CreateKnowledgeBaseBody.partial().strict()
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change')
  .openapi({ minProperties: 1 });
export const KbListQuery = z.object({ limit: Limit, cursor: CursorParam });
export const KbDocumentSchema = z.object({
  id: Uuid,
  tenant_id: Uuid,
  knowledge_base_id: Uuid,
  title: z.string(),
  source: z.string().nullable(),
  format: z.enum(['text', 'markdown']),
  chunks: z.number().int(),
  embedded_chunks: z.number().int().openapi({
    description: 'How many of its chunks have their embedding (0 where the project has no vector search; 0 again ' +
      'after its content changes: the chunks are cut again)',
  }),
  embeddings_written_at: Instant.nullable().openapi({
    description: 'When embeddings of its chunks were last written or cleared (PUT …/embeddings); null if never. ' +
      'Each write is an entry of the document in the audit trail',
  }),
  created_at: Instant,
  updated_at: Instant,
}).openapi('KnowledgeDocument');
export const KbDocumentDetailSchema = KbDocumentSchema.extend({ content: z.string() }).openapi('KnowledgeDocumentDetail');
const KbDocumentFields = {
  title: Text.min(1).max(200),
  source: Text.max(2000).nullable().optional(),
  format: z.enum(['text', 'markdown']),
  content: Text.min(1).max(1_000_000).regex(/\S/, 'must have some text, not only whitespace'),
};
export const CreateKbDocumentBody = z.object({ ...KbDocumentFields, format: KbDocumentFields.format.default('text') }).strict();
// A new content is chunked again by the database (kb_document_chunks); the rest is the
// document's own description.
export const UpdateKbDocumentBody = z.object(KbDocumentFields).partial().strict()
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change')
  .openapi({ minProperties: 1 });
export const KbSearchQuery = z.object({
  q: Text.min(1).max(500),
  knowledge_base_id: Uuid.optional(),
  limit: QueryInteger(1, 50).default(5),
});
/** What the provider's searches add: the tenant, and the agent on the call, whose own
 *  knowledge base alone is searched. */
const ProviderSearch = {
  tenant_id: Uuid,
  agent_id: Uuid.optional().openapi({
    description: "The agent on the call (`/route`'s `agent.id`): only its knowledge base is searched, and nothing when " +
      'it has none (nor for an agent not of the tenant). One of `agent_id` and `knowledge_base_id` is required, not ' +
      "both: a search naming neither would read every knowledge base of the tenant, other agents' included",
  }),
};
type Scope = { agent_id?: string; knowledge_base_id?: string };
const oneScope = {
  check: (v: Scope) => !(v.agent_id && v.knowledge_base_id),
  message: { message: 'Give agent_id or knowledge_base_id, not both', path: ['knowledge_base_id'] },
};
// Closed by default: an integration that left both out (an agent with no knowledge base,
// `/route` answering null for it) searched every knowledge base of the tenant.
const someScope = {
  check: (v: Scope) => Boolean(v.agent_id || v.knowledge_base_id),
  message: {
    message: 'Give agent_id (the agent on the call: its knowledge base alone) or knowledge_base_id',
    path: ['agent_id'],
  },
};
export const KbMachineSearchQuery = KbSearchQuery.extend(ProviderSearch)
  .refine(oneScope.check, oneScope.message)
  .refine(someScope.check, someScope.message);
/** A query's embedding, as the model gave it: numbers only (JSON has no NaN or infinity);
 *  its size must be the project's (1,536 on hosted projects; the database says which). */
const Embedding = z.array(
  // What single precision keeps (pgvector's): 0, or a magnitude from its smallest normal
  // number to below its largest.
  z.number().refine((x) => x === 0 || (Math.abs(x) >= 1.2e-38 && Math.abs(x) < 3.4e38), {
    message: 'must be 0 or a single-precision number (1.2e-38 ≤ |x| < 3.4e38)',
  }),
).min(1).max(16_000)
  // pgvector sums the squares in single precision: past 3.4e38 they overflow, and if
  // every square rounds to zero (no value of 1.1e-19 or more) the vector has no
  // direction; either way its cosine distances are NaN. As private.kb_set_embeddings
  // checks them.
  .refine((v) => v.some((x) => Math.abs(x) >= 1.1e-19), {
    message: 'must not be all zeros (nor so near zero that single precision loses its direction)',
  })
  .refine((v) => v.reduce((sum, x) => sum + x * x, 0) < 3.4e38, {
    message: 'values are too large (the sum of their squares must stay below 3.4e38)',
  });
/** A search with the query's embedding, by POST (an embedding does not fit a URL): by it
 *  and the text where the project has vector search, else by the text, which is always
 *  given. */
export const KbSearchBody = z.object({
  q: Text.min(1).max(500).openapi({ description: 'The query as text: searched by full text, with the embedding or alone' }),
  embedding: Embedding.optional().openapi({
    description: "The query's embedding, from the same model as the chunks': where the project has vector search, the " +
      'chunks nearest to it by cosine distance',
  }),
  ranking: z.enum(['hybrid', 'embedding']).default('hybrid').openapi({
    description: 'With an embedding, where the project has vector search: `hybrid` fuses the nearest chunks and the ' +
      "text's best by their ranks (reciprocal rank fusion, k = 60: a chunk both find first, one without an embedding " +
      "yet still found by its words); `embedding` orders by the embedding alone, the text's best after it only when " +
      'the embedding finds fewer than asked for (fewer chunks have one, or the HNSW scan stopped)',
  }),
  knowledge_base_id: Uuid.optional(),
  limit: z.number().int().min(1).max(50).default(5),
}).strict();
export const KbMachineSearchBody = KbSearchBody.extend(ProviderSearch).strict()
  .refine(oneScope.check, oneScope.message)
  .refine(someScope.check, someScope.message);
export const KbChunksQuery = z.object({
  after: QueryInteger(-1, 2_147_483_647).optional().openapi({
    description: 'The last ordinal of the previous page',
  }),
  limit: QueryInteger(1, 500).default(100),
  embedded: z.enum(['true', 'false']).transform((v) => v === 'true').optional().openapi({
    description: 'Only the chunks with (true) or without (false) an embedding',
  }),
});
export const KbChunkSchema = z.object({
  id: Uuid,
  ordinal: z.number().int(),
  content: z.string(),
  embedded: z.boolean().openapi({ description: 'Whether it has its embedding (never where the project has no vector search)' }),
}).openapi('KnowledgeChunk');
export const KbChunkPageSchema = z.object({
  items: z.array(KbChunkSchema),
  next: z.number().int().nullable().openapi({ description: 'The `after` of the next page; null on the last' }),
  embedding_dimensions: z.number().int().nullable().openapi({
    description: 'The size embeddings must have; null where the project has no vector search (-1: any size)',
  }),
});
export const SetEmbeddingsBody = z.object({
  items: z.array(
    z.object({
      chunk_id: Uuid,
      embedding: Embedding.nullable().openapi({ description: "The chunk's embedding; null clears it" }),
    }).strict(),
  ).min(1).max(100),
}).strict();
export const SetEmbeddingsResult = z.object({ written: z.number().int() }).openapi('EmbeddingsWritten');
const KbPlaceSchema = z.object({
  rank: z.number().int().openapi({ description: '1 for the best' }),
  score: z.number().openapi({ description: "That search's own score: cosine similarity or ts_rank" }),
}).openapi('KnowledgeHitPlace');
const KbChunkFound = {
  chunk_id: Uuid,
  document_id: Uuid,
  knowledge_base_id: Uuid,
  title: z.string(),
  ordinal: z.number().int(),
  content: z.string(),
};
export const KbHitSchema = z.object({
  ...KbChunkFound,
  score: z.number().openapi({
    description: 'In hybrid mode the fused score (the sum of 1/(60 + rank) over the searches that found it); ' +
      "otherwise that of what found it (`matched_by`): the cosine similarity to the query's embedding, or ts_rank",
  }),
  matched_by: z.enum(['embedding', 'full_text', 'both']).openapi({
    description: "What found it: the query's embedding, its text, or both (hybrid)",
  }),
  hybrid: z.object({
    embedding: KbPlaceSchema.nullable(),
    full_text: KbPlaceSchema.nullable(),
  }).optional().openapi({
    description: 'Hybrid only: where each search placed it (null: not found by that one)',
  }),
}).openapi('KnowledgeHit');
export const KbHitsSchema = z.object({
  items: z.array(KbHitSchema),
  mode: z.enum(['hybrid', 'embedding', 'full_text']).openapi({
    description: 'What ranked the chunks: both searches fused (`hybrid`; a chunk both found comes before any only one ' +
      "found, as each list is read at most 50 deep), the query's embedding, or the text alone (no embedding given, no " +
      'vector search, or no chunk with an embedding yet)',
  }),
});
/** The GET searches' answer: by the text alone, in the same shape. */
export const KbTextHitsSchema = z.object({
  items: z.array(
    z.object({
      ...KbChunkFound,
      score: z.number().openapi({ description: 'ts_rank' }),
      matched_by: z.enum(['full_text']),
    }).openapi('KnowledgeTextHit'),
  ),
  mode: z.enum(['full_text']),
});
export const KnowledgeBasePageSchema = z.object({ items: z.array(KnowledgeBaseSchema), next: z.string().nullable() });
export const KbDocumentPageSchema = z.object({ items: z.array(KbDocumentSchema), next: z.string().nullable() });
export const CallTicketSchema = z.object({ ticket_id: Uuid, call_id: Uuid }).openapi('CallTicket');
/** What the ticket opened from a call may be given beyond what the call says (its
 *  title, the summary as description, the requester): what the tickets API's create
 *  takes for the rest, custom fields included (a tenant's required fields must be). */
export const OpenCallTicketBody = z.object({
  title: Text.trim().min(5).max(200).optional().openapi({ description: 'Default: "Call from <customer or number>"' }),
  priority: PrioritySchema.default('medium'),
  department: DepartmentSchema.default('support'),
  team_id: Uuid.optional().openapi({ description: 'A team with automatic assignment picks an agent' }),
  assigned_to: Uuid.optional().openapi({ description: 'An agent or admin of the tenant' }),
  due_date: IsoTimestamp.optional(),
  tags: Tags.default([]),
  custom_fields: CustomFieldValues.default({}),
}).strict().openapi('OpenCallTicket');
