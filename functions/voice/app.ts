// The voice API (issue 14): AI voice agents that answer a tenant's phone numbers, the
// tenant's customers, calls with their transcripts, and the agents' knowledge base. The
// telephony provider routes calls and reports call events with a machine credential
// (routes/provider.ts, one round trip each) and uploads recordings (routes/recordings.ts,
// through signed URLs); people manage the rest under RLS in their request's transaction.
// Each route declares what it needs (shared/auth/needs.ts).
import { createApp } from '../../shared/http.ts';
import { agents } from './routes/agents.ts';
import { calls } from './routes/calls.ts';
import { customers } from './routes/customers.ts';
import { customerImport, importStream } from './routes/import.ts';
import { provider } from './routes/provider.ts';
import { recordings } from './routes/recordings.ts';

export const app = createApp('voice', {
  title: 'Voice API',
  description: 'Voice agents and their CRM: call routing and events for the telephony provider, agents, customers, ' +
    'calls with transcripts, and the knowledge base.',
}, { streamedBodies: [importStream] });

// Registration order matters where paths overlap: /calls/events (POST) and
// /knowledge-bases/search before the {id} routes.
app.route('/', provider);
app.route('/', agents);
app.route('/', customerImport);
app.route('/', customers);
app.route('/', recordings);
app.route('/', calls);
