// Every operation of the five functions' OpenAPI documents has an operationId, unique
// across them all (client generators name their methods by it), and at least one tag
// (they group by it); a route that names its own keeps it. Every operation that takes
// a body declares the 408, 413 and 415 the body checks may answer before its route.
import { expect, it } from 'vitest';
import { withOperationNames } from '../../shared/http.ts';
import { functionApps as apps, functionFolders, operationsOf } from '../helpers/openapi.ts';

it('the suites that walk every document walk every function (tests/helpers/openapi.ts)', () => {
  expect(Object.keys(apps).sort()).toEqual(functionFolders());
  expect(functionFolders().length).toBeGreaterThanOrEqual(5);
});

it('names and tags every operation of every function, with ids unique across all of them', async () => {
  const ids: string[] = [];
  for (const { path, method, op } of await operationsOf(apps)) {
    expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z0-9]+$/);
    expect(op.tags?.length, `${method} ${path}`).toBeGreaterThan(0);
    ids.push(op.operationId!);
  }
  expect(ids.length).toBeGreaterThanOrEqual(50);
  expect(new Set(ids).size).toBe(ids.length);
});

it('says on every operation that takes a body that it may be 408, 413 or 415 (refused before the route), with the error shape', async () => {
  const bodies = (await operationsOf(apps)).filter(({ op }) => op.requestBody);
  expect(bodies.length).toBeGreaterThan(40);
  for (const { path, method, op } of bodies) {
    for (const status of ['408', '413', '415']) {
      expect(op.responses?.[status]?.content?.['application/json']?.schema, `${method} ${path} ${status}`)
        .toEqual({ $ref: '#/components/schemas/Error' });
    }
  }
  // The reference resolves in each document.
  for (const fn of new Set(bodies.map((b) => b.fn))) {
    const doc = await (await apps[fn].request(`/${fn}/openapi.json`)).json();
    expect(doc.components?.schemas?.Error, fn).toBeDefined();
  }
});

it('derives names from method and path, and keeps what a route declares', () => {
  const doc = withOperationNames('tickets', {
    openapi: '3.1.0',
    info: { title: 't', version: '1' },
    paths: {
      '/tickets/{id}/messages': { post: { responses: {} } },
      '/tickets': { get: { responses: {}, operationId: 'listTickets', tags: ['tickets'] } },
    },
  });
  expect(doc.paths?.['/tickets/{id}/messages']?.post).toMatchObject({ operationId: 'postTicketsByIdMessages', tags: ['messages'] });
  expect(doc.paths?.['/tickets']?.get).toMatchObject({ operationId: 'listTickets', tags: ['tickets'] });
});
