import { describe, expect, it } from 'vitest';
import { AuditHasher } from '../../src/audit/hasher.js';
import { type SubjectKeyStore, SubjectVault } from '../../src/audit/subjects.js';

/** An in-memory SubjectKeyStore; the SQL one is exercised through the HTTP tests. */
function memoryStore(): SubjectKeyStore & { rows: Map<string, { tenant: string; ref: string; sealed: string | null }> } {
  const rows = new Map<string, { tenant: string; ref: string; sealed: string | null }>();
  return {
    rows,
    async active(tenant, ref) {
      for (const [keyId, r] of rows) if (r.tenant === tenant && r.ref === ref && r.sealed) return { keyId, sealedKey: r.sealed };
      return undefined;
    },
    async get(tenant, keyId) {
      const r = rows.get(keyId);
      return r && r.tenant === tenant ? r.sealed : undefined;
    },
    async insert(tenant, ref, keyId, sealedKey) {
      rows.set(keyId, { tenant, ref, sealed: sealedKey });
    },
    async erase(tenant, ref) {
      let n = 0;
      for (const r of rows.values()) {
        if (r.tenant === tenant && r.ref === ref && r.sealed) {
          r.sealed = null;
          n++;
        }
      }
      return n;
    },
  };
}

const sealer = {
  encrypt: (t: string, r: string, p: Uint8Array) => JSON.stringify({ t, r, p: Buffer.from(p).toString('base64') }),
  decrypt: (t: string, r: string, c: string) => {
    const o = JSON.parse(c) as { t: string; r: string; p: string };
    if (o.t !== t || o.r !== r) throw new Error('sealed for another record');
    return Buffer.from(o.p, 'base64');
  },
};

describe('subject vault', () => {
  const vault = new SubjectVault(sealer, new AuditHasher(Buffer.alloc(32, 7)));

  it('round-trips data and reuses one key per subject', async () => {
    const store = memoryStore();
    const a = await vault.seal(store, 't', 'alice', { name: 'Alice' }, 'now');
    const b = await vault.seal(store, 't', 'alice', { name: 'Alice B.' }, 'now');
    expect(b.key_id).toBe(a.key_id);
    expect(store.rows.size).toBe(1);
    expect(await vault.open(store, 't', a)).toEqual({ ref: a.ref, data: { name: 'Alice' } });
    expect(a.data).not.toContain('Alice');
  });

  it('binds the ciphertext to its tenant, subject and key: moved or altered data does not open', async () => {
    const store = memoryStore();
    const a = await vault.seal(store, 't', 'alice', { name: 'Alice' }, 'now');
    const b = await vault.seal(store, 't', 'bob', { name: 'Bob' }, 'now');
    await expect(vault.open(store, 't', { ...a, ref: b.ref })).rejects.toThrow();
    await expect(vault.open(store, 't', { ...a, key_id: b.key_id })).rejects.toThrow();
    const flipped = Buffer.from(a.data, 'base64');
    flipped[flipped.length - 1]! ^= 1;
    await expect(vault.open(store, 't', { ...a, data: flipped.toString('base64') })).rejects.toThrow();
    expect(await vault.open(store, 'other', a)).toEqual({ ref: a.ref, erased: true });
  });

  it('erases only the named subject', async () => {
    const store = memoryStore();
    const a = await vault.seal(store, 't', 'alice', { name: 'Alice' }, 'now');
    const b = await vault.seal(store, 't', 'bob', { name: 'Bob' }, 'now');
    expect(await vault.erase(store, 't', 'alice', 'later')).toBe(1);
    expect(await vault.erase(store, 't', 'alice', 'later')).toBe(0);
    expect(await vault.open(store, 't', a)).toEqual({ ref: a.ref, erased: true });
    expect(await vault.open(store, 't', b)).toEqual({ ref: b.ref, data: { name: 'Bob' } });
  });
});
