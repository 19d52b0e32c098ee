// The n8n connector's whole lifecycle through the provisioning job against the real
// n8n 2.8.4 (npm run test:n8n; not part of npm test): the same scenario the stand-in
// passes in the normal suite (tests/helpers/n8n-lifecycle.ts).
import { inject } from 'vitest';
import { describeN8nLifecycle } from '../helpers/n8n-lifecycle.ts';

const url = inject('n8nUrl');
const rest = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${url}/rest${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
};

describeN8nLifecycle('real n8n 2.8.4', () =>
  Promise.resolve({
    url,
    apiKey: inject('n8nApiKey'),
    // n8n's own E2E licence switch (the server runs with E2E_TESTS=true).
    async licenseProjects() {
      for (const [p, body] of [
        ['/e2e/feature', { feature: 'feat:projectRole:admin', enabled: true }],
        ['/e2e/quota', { feature: 'quota:maxTeamProjects', value: -1 }],
      ] as const) {
        const r = await rest('PATCH', p, body);
        if (r.status !== 200) throw new Error(`${p} → ${r.status}`);
      }
    },
    async acceptInvitation(inviteUrl) {
      const q = new URL(inviteUrl).searchParams;
      const r = await rest('POST', `/invitations/${q.get('inviteeId')}/accept`, {
        inviterId: q.get('inviterId'),
        firstName: 'Olive',
        lastName: 'Owner',
        password: 'Invitee-Passw0rd-for-tests',
      });
      if (r.status !== 200) throw new Error(`accept → ${r.status} ${JSON.stringify(r.body)}`);
    },
    async invitationValid(inviteUrl) {
      const q = new URL(inviteUrl).searchParams;
      const r = await rest('GET', `/resolve-signup-token?inviterId=${q.get('inviterId')}&inviteeId=${q.get('inviteeId')}`);
      return r.status === 200;
    },
  }), 30_000);
