import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inclusionProof, leafHash, rootFromLeafHashes, verifyInclusion } from '../../src/audit/merkle.js';
import { TEST_DATABASES } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';

const utf8 = new TextEncoder();
const hex = (h: Uint8Array) => Buffer.from(h).toString('hex');

interface Listed {
  leaf_index: number | null;
  event: { request_id: string; action: string; subject?: { ref: string; data?: { display_name: string }; erased?: true } };
}

/**
 * Crypto-shredding (GDPR Art. 17): erasing a data subject makes its personal data unreadable
 * while every stored byte, leaf hash, root and proof of the log stays exactly as it was.
 */
describe.each(TEST_DATABASES)('audit erasure on $name', (database) => {
  let s: TestServer;
  let admin: Record<string, string>;

  const createToken = (displayName: string, headers = admin) =>
    s.app.inject({ method: 'POST', url: '/v1/tokens', headers, payload: { policies: [], display_name: displayName } });

  async function listed(headers = admin): Promise<Listed[]> {
    const res = await s.app.inject({ method: 'GET', url: '/v1/audit/events?limit=999&action=token:create', headers });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { items: Listed[] }).items;
  }

  async function rawPayloads(): Promise<string[]> {
    const rows = await s.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id').execute();
    return rows.map((r) => r.payload);
  }

  beforeAll(async () => {
    s = await startTestServer({ database });
    admin = { authorization: `Bearer ${s.adminToken}` };
    expect((await createToken('alice@example.com')).statusCode).toBe(201);
    expect((await createToken('bob@example.com')).statusCode).toBe(201);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('stores personal data only sealed, and shows it to authorized readers', async () => {
    for (const payload of await rawPayloads()) {
      expect(payload).not.toContain('alice');
      expect(payload).not.toContain('bob@');
    }
    const keys = await s.runtime.database.db.selectFrom('audit_subject_keys').selectAll().execute();
    expect(JSON.stringify(keys)).not.toContain('alice');
    const names = (await listed()).map((i) => i.event.subject?.data?.display_name);
    expect(names).toEqual(['alice@example.com', 'bob@example.com']);
  });

  it("erases one subject's data; the log, its root and its proofs are untouched", async () => {
    await s.runtime.audit.integrateAll();
    const before = await rawPayloads();
    const rootBefore = (await s.runtime.stores.audit.treeState())!.rootHash;
    const aliceIndex = (await listed()).find((i) => i.event.subject?.data?.display_name === 'alice@example.com')!.leaf_index!;

    const res = await s.app.inject({ method: 'POST', url: '/v1/audit/erase', headers: admin, payload: { subject: 'alice@example.com' } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ subject_ref: s.runtime.subjects.refOf('alice@example.com'), keys_destroyed: 1 });

    const after = await rawPayloads();
    expect(after.slice(0, before.length)).toEqual(before);
    const views = await listed();
    expect(views.map((i) => i.event.subject)).toEqual([
      { ref: s.runtime.subjects.refOf('alice@example.com'), erased: true },
      { ref: s.runtime.subjects.refOf('bob@example.com'), data: { display_name: 'bob@example.com' } },
    ]);

    await s.runtime.audit.integrateAll();
    const state = (await s.runtime.stores.audit.treeState())!;
    const leaves = (await s.runtime.stores.audit.leafHashes(0, state.size)).map((h) => Buffer.from(h, 'hex'));
    expect(hex(rootFromLeafHashes(leaves))).toBe(state.rootHash);
    const sizeBefore = before.length;
    expect(hex(rootFromLeafHashes(leaves.slice(0, sizeBefore)))).toBe(rootBefore);
    const aliceLeaf = leafHash(utf8.encode(before[aliceIndex]!));
    const proof = await inclusionProof(aliceIndex, state.size, (a, b) => leaves.slice(a, b));
    expect(() => verifyInclusion(aliceIndex, state.size, aliceLeaf, proof, Buffer.from(state.rootHash, 'hex'))).not.toThrow();
  });

  it('records the erasure without naming the subject', async () => {
    await s.runtime.audit.flush();
    const payloads = await rawPayloads();
    const erase = payloads.map((p) => JSON.parse(p)).find((e) => e.action === 'audit:erase');
    expect(erase.details).toEqual({ subject_ref: s.runtime.subjects.refOf('alice@example.com'), keys_destroyed: 1 });
    expect(payloads.join('\n')).not.toContain('alice');
  });

  it('gives a subject named again after erasure a new key, leaving old events erased', async () => {
    await createToken('alice@example.com');
    const subjects = (await listed()).map((i) => i.event.subject);
    expect(subjects[0]).toEqual({ ref: s.runtime.subjects.refOf('alice@example.com'), erased: true });
    expect(subjects.at(-1)).toEqual({ ref: s.runtime.subjects.refOf('alice@example.com'), data: { display_name: 'alice@example.com' } });
  });

  it("cannot erase another tenant's subjects", async () => {
    await s.app.inject({ method: 'POST', url: '/v1/tenants', headers: admin, payload: { name: 'acme' } });
    const minted = await s.app.inject({ method: 'POST', url: '/v1/tokens', headers: { ...admin, 'x-rampart-tenant': 'acme' }, payload: { policies: ['admin'] } });
    const acme = { authorization: `Bearer ${(minted.json() as { token: string }).token}` };
    const res = await s.app.inject({ method: 'POST', url: '/v1/audit/erase', headers: acme, payload: { subject: 'bob@example.com' } });
    expect(res.json()).toMatchObject({ keys_destroyed: 0 });
    expect((await listed()).find((i) => i.event.subject?.data?.display_name === 'bob@example.com')).toBeDefined();
  });

  it('refuses an erase request without a subject, and principals without permission', async () => {
    const bad = await s.app.inject({ method: 'POST', url: '/v1/audit/erase', headers: admin, payload: {} });
    expect(bad.statusCode).toBe(400);
    const created = await createToken('');
    const nobody = { authorization: `Bearer ${(created.json() as { token: string }).token}` };
    const denied = await s.app.inject({ method: 'POST', url: '/v1/audit/erase', headers: nobody, payload: { subject: 'bob@example.com' } });
    expect(denied.statusCode).toBe(403);
  });
});
