// The tickets API: the support-ticket workflow. Every query runs as the caller under
// RLS in the request's transaction; the database enforces the status machine, the
// assignee's role, numbering, SLA dates and first responses, and the route modules
// shape the API around them (clear 403/404/409s, filters, pagination, idempotent
// creates). Each route declares what it needs (shared/auth/needs.ts). The SLA sweep is
// a job (shared/jobs/tasks/sla-sweep.ts), not a route.
import { createApp } from '../../shared/http.ts';
import { attachments } from './routes/attachments.ts';
import { automation } from './routes/automation.ts';
import { cannedResponses } from './routes/canned-responses.ts';
import { conversation } from './routes/conversation.ts';
import { fields } from './routes/fields.ts';
import { followers } from './routes/followers.ts';
import { macros } from './routes/macros.ts';
import { slaPolicies } from './routes/sla-policies.ts';
import { tickets } from './routes/tickets.ts';

export const app = createApp('tickets', {
  title: 'Tickets API',
  description:
    'The support-ticket workflow: tickets, replies, internal notes, assignment, SLA, search, attachments, canned responses, macros, automation rules, custom fields, departments and tags.',
});

// Registration order matters where paths overlap: /sla-policies and /canned-responses
// before /{id}.
app.route('/', slaPolicies);
app.route('/', cannedResponses);
app.route('/', followers); // /notifications before /{id}
app.route('/', macros); // /macros before /{id}
app.route('/', automation); // /automation-rules before /{id}
app.route('/', fields); // /custom-fields, /departments, /tags before /{id}
app.route('/', tickets);
app.route('/', conversation);
app.route('/', attachments);
