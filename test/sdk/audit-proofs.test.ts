import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hash, verifyConsistency } from '../../src/audit/merkle.js';
import { generateNoteKey } from '../../src/audit/note.js';
import { openCheckpoint } from '../../src/audit/checkpoint.js';
import { parseVerifierKey } from '../../src/audit/note.js';
import { RampartClient } from '../../src/sdk/client.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The SDK's audit proof methods against a real HTTPS server: they return what the server signed,
 * and `verifyAuditInclusion` accepts an event only under a checkpoint signed by the pinned key,
 * refusing altered events, foreign keys and histories that do not extend a kept checkpoint.
 */

const fromB64 = (s: string): Hash => new Uint8Array(Buffer.from(s, 'base64'));

describe('RampartClient audit proofs', () => {
  let s: TestServer;
  let client: RampartClient;
  let pinned: string;

  async function sign(): Promise<void> {
    await s.runtime.audit.flush();
    await s.runtime.audit.integrateAll();
    await s.runtime.checkpointer.checkpoint();
  }

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    client = new RampartClient({ addr: s.addr!, caPem: s.runtime.trustBundlePem, token: s.adminToken });
    for (const name of ['acme', 'globex', 'initech']) await client.createTenant(name);
    await client.createToken({ ttl: '1h', displayName: 'Jane Doe' }); // an event with a sealed subject
    await sign();
    pinned = s.runtime.checkpointer.verifierKey;
  });
  afterAll(async () => {
    client?.close();
    await s?.close();
  });

  it('serve the verifier key and the latest signed checkpoint', async () => {
    expect(await client.auditVerifierKey()).toBe(pinned);
    const note = await client.auditCheckpoint();
    expect(note).toBe((await s.runtime.checkpoints.latest())!.note);
    expect(openCheckpoint(note, parseVerifierKey(pinned)).size).toBeGreaterThan(4);
  });

  it('prove every listed event under the pinned key', async () => {
    const items = (await client.listAuditEvents({ limit: 100 })).items.filter((i) => i.event && !('subject' in i.event));
    expect(items.length).toBeGreaterThan(3);
    for (const item of items) {
      const verified = await client.verifyAuditInclusion({ leafIndex: item.leaf_index!, entry: JSON.stringify(item.event), verifierKey: pinned });
      expect(verified.checkpoint).toBe(await client.auditCheckpoint());
    }
    const [first] = items;
    await client.verifyAuditInclusion({ leafIndex: first!.leaf_index!, entry: first!.event!, verifierKey: pinned });
  });

  it('refuse an altered event, another leaf index, a foreign key and an index beyond the checkpoint', async () => {
    const [item] = (await client.listAuditEvents({ limit: 1 })).items;
    const entry = JSON.stringify(item!.event);
    await expect(client.verifyAuditInclusion({ leafIndex: item!.leaf_index!, entry: entry.replace('"success"', '"denied"'), verifierKey: pinned })).rejects.toMatchObject({ code: 'audit.proof_invalid' });
    await expect(client.verifyAuditInclusion({ leafIndex: item!.leaf_index! + 1, entry, verifierKey: pinned })).rejects.toMatchObject({ code: 'audit.proof_invalid' });
    const impostor = generateNoteKey(s.runtime.checkpointer.origin).signer.verifierKey;
    await expect(client.verifyAuditInclusion({ leafIndex: item!.leaf_index!, entry, verifierKey: impostor })).rejects.toMatchObject({ code: 'audit.checkpoint_invalid' });
    await expect(client.verifyAuditInclusion({ leafIndex: 1_000_000, entry, verifierKey: pinned })).rejects.toMatchObject({ code: 'audit.range_invalid' });
  });

  it('refuse an event listed with its subject opened: it is no longer the logged entry', async () => {
    const withSubject = (await client.listAuditEvents({ limit: 100 })).items.find((i) => i.event && 'subject' in i.event);
    expect(withSubject).toBeDefined();
    await expect(client.verifyAuditInclusion({ leafIndex: withSubject!.leaf_index!, entry: withSubject!.event!, verifierKey: pinned })).rejects.toMatchObject({ code: 'audit.proof_invalid' });
  });

  it('check that the log extends a checkpoint kept earlier, and refuse one it does not', async () => {
    const kept = openCheckpoint(await client.auditCheckpoint(), parseVerifierKey(pinned));
    const previous = { size: kept.size, rootHash: Buffer.from(kept.rootHash).toString('base64') };
    await client.createTenant('umbrella');
    await sign();
    const [item] = (await client.listAuditEvents({ limit: 1 })).items;
    const check = { leafIndex: item!.leaf_index!, entry: JSON.stringify(item!.event), verifierKey: pinned };
    const verified = await client.verifyAuditInclusion({ ...check, previous });
    expect(verified.size).toBeGreaterThan(kept.size);

    const consistency = await client.auditConsistencyProof(kept.size);
    expect(consistency).toMatchObject({ from: kept.size, size: verified.size });
    verifyConsistency(kept.size, verified.size, consistency.proof.map(fromB64), kept.rootHash, fromB64(verified.rootHash));

    const forked = { size: kept.size, rootHash: Buffer.alloc(32, 7).toString('base64') };
    await expect(client.verifyAuditInclusion({ ...check, previous: forked })).rejects.toMatchObject({ code: 'audit.proof_invalid' });
    await expect(client.verifyAuditInclusion({ ...check, previous: { ...previous, size: verified.size + 5 } })).rejects.toMatchObject({ code: 'audit.proof_invalid' });
  });

  it('return inclusion proofs with the signed checkpoint of their size', async () => {
    const size = openCheckpoint(await client.auditCheckpoint(), parseVerifierKey(pinned)).size;
    const p = await client.auditInclusionProof(2, size);
    expect(p).toMatchObject({ index: 2, size, checkpoint: await client.auditCheckpoint() });
    await expect(client.auditInclusionProof(size, size)).rejects.toMatchObject({ code: 'audit.range_invalid', status: 400 });
  });
});
