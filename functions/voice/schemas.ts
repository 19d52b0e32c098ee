// Request and response shapes of the voice API (issue 14). The database checks the same
// rules again (E.164 numbers, the LLM configuration, the call status machine); these
// shapes make bad input a clear 422 before it reaches SQL.
import { z } from '@hono/zod-openapi';
import { JsonObject, Text, Uuid } from '../../shared/schemas/common.ts';

export const E164 = z.string().regex(/^\+[1-9][0-9]{6,14}$/, 'must be an E.164 number (+ and 7 to 15 digits)')
  .openapi({ example: '+14155550123' });
/** A number as a provider reports it (may lack the +, or be short for internal lines). */
const ReportedNumber = z.string().regex(/^\+?[0-9]{3,15}$/, 'must be digits, optionally after a +');
const Timestamp = z.iso.datetime({ offset: true });

// ---------------------------------------------------------------- routing

export const RouteQuery = z.object({
  to: E164.openapi({ description: 'The dialled number', param: { name: 'to', in: 'query' } }),
  from: E164.optional().openapi({ description: "The caller's number, if known", param: { name: 'from', in: 'query' } }),
});

export const LlmConfigSchema = z.object({
  model: Text.min(1).max(200),
  system_prompt: Text.max(20000),
  temperature: z.number().min(0).max(2).optional(),
  tools: z.array(JsonObject(16384)).max(50).optional(),
}).openapi('LlmConfig');

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
    recording_consent_at: z.string().nullable(),
  }).nullable(),
}).openapi('RouteAnswer');

// ---------------------------------------------------------------- call events

const EventBase = {
  tenant_id: Uuid,
  provider_call_id: Text.min(1).max(200),
};

export const CallStartedEvent = z.object({
  type: z.literal('call.started'),
  ...EventBase,
  agent_id: Uuid,
  direction: z.enum(['inbound', 'outbound']).default('inbound'),
  from: ReportedNumber.optional(),
  to: ReportedNumber.optional(),
  started_at: Timestamp.optional(),
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
  segments: z.array(SegmentSchema).min(1).max(500),
}).strict();

export const CallEndedEvent = z.object({
  type: z.literal('call.ended'),
  ...EventBase,
  status: z.enum(['completed', 'failed', 'missed']),
  ended_at: Timestamp.optional(),
  duration_seconds: z.number().int().min(0).max(7 * 86400).optional(),
  outcome: Text.max(200).optional(),
  cost: z.number().min(0).max(1e6).optional(),
  summary: Text.max(20000).optional(),
  recording_path: Text.max(1024).optional(),
}).strict();

export const CallEventBody = z.discriminatedUnion('type', [CallStartedEvent, TranscriptEvent, CallEndedEvent])
  .openapi('CallEvent');

export const CallEventResult = z.object({
  applied: z.boolean().openapi({ description: 'False for a repeated or late event, which changed nothing' }),
  segments_added: z.number().int().optional(),
  call_id: Uuid,
  status: z.enum(['ringing', 'in_progress', 'completed', 'failed', 'missed']),
}).openapi('CallEventResult');
