// The n8n connector's lifecycle through the provisioning job against the stand-in, with
// the assertions `npm run test:n8n` runs against the real n8n 2.8.4
// (tests/helpers/n8n-lifecycle.ts).
import { afterAll } from 'vitest';
import { describeN8nLifecycle } from './helpers/n8n-lifecycle.ts';
import { N8nStandIn } from './partners/n8n.ts';

let standIn: N8nStandIn | undefined;
afterAll(async () => {
  await standIn?.server.close();
});

describeN8nLifecycle('stand-in', async () => {
  const s = standIn = await N8nStandIn.start();
  return {
    url: s.url,
    apiKey: s.apiKey,
    licenseProjects: () => {
      s.licensed = true;
      return Promise.resolve();
    },
    acceptInvitation: (inviteUrl) => {
      const id = new URL(inviteUrl).searchParams.get('inviteeId')!;
      s.accept(s.users.get(id)!.email);
      return Promise.resolve();
    },
    invitationValid: (inviteUrl) => Promise.resolve(s.invitationValid(inviteUrl)),
  };
});
