import { describe, expect, it } from 'vitest';
import type { Mount } from '../../src/secrets/engine.js';
import type { MountStore } from '../../src/secrets/store.js';
import { MountIndex, TABLE_TTL_MS } from '../../src/server/vault/mount-index.js';

/**
 * The Vault routes' mount table cache (src/server/vault/mount-index.ts): a change of this process
 * is seen at once, one of another replica within TABLE_TTL_MS, and a failed read is not kept.
 */

function mount(tenant: string, path: string, accessor: string): Mount {
  return { tenant, path, type: 'kv', accessor, description: '', options: { version: '2' }, defaultLeaseTtl: 0, maxLeaseTtl: 0, createdAt: '2026-01-01T00:00:00.000Z' };
}

function fakeStore() {
  const tables = new Map<string, Mount[]>();
  let reads = 0;
  let fail = false;
  let gate: Promise<void> | undefined;
  const store: Pick<MountStore, 'list' | 'allPaths'> = {
    async list(tenant) {
      reads++;
      const rows = [...(tables.get(tenant) ?? [])];
      if (gate) await gate;
      if (fail) throw new Error('store unavailable');
      return rows;
    },
    async allPaths() {
      return [...tables.values()].flat().map((m) => m.path);
    },
  };
  return {
    store: store as MountStore,
    tables,
    reads: () => reads,
    failing: (on: boolean) => void (fail = on),
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

describe('MountIndex.mounts', () => {
  it('reads each tenant once within the TTL, and again after it (a mount made by another replica)', async () => {
    const s = fakeStore();
    let now = 0;
    const index = new MountIndex(s.store, () => undefined, () => now);
    s.tables.set('acme', [mount('acme', 'secret', 'kv_1')]);
    expect((await index.mounts('acme')).map((m) => m.accessor)).toEqual(['kv_1']);
    expect(await index.mounts('globex')).toEqual([]);
    s.tables.set('acme', [mount('acme', 'secret', 'kv_1'), mount('acme', 'team', 'kv_2')]);
    now = TABLE_TTL_MS - 1;
    expect(await index.mounts('acme')).toHaveLength(1);
    expect(s.reads()).toBe(2);
    now = TABLE_TTL_MS;
    expect(await index.mounts('acme')).toHaveLength(2);
    expect(s.reads()).toBe(3);
  });

  it('sees an unmount and a remount of this process at once after invalidate()', async () => {
    const s = fakeStore();
    const index = new MountIndex(s.store, () => undefined, () => 0);
    s.tables.set('acme', [mount('acme', 'secret', 'kv_old')]);
    await index.mounts('acme');
    // Unmount and mount again at the same path: a new accessor, an empty engine.
    s.tables.set('acme', [mount('acme', 'secret', 'kv_new')]);
    index.invalidate();
    expect((await index.mounts('acme')).map((m) => m.accessor)).toEqual(['kv_new']);
  });

  it('does not keep a table read before an invalidation that happened while the read was in flight', async () => {
    const s = fakeStore();
    const index = new MountIndex(s.store, () => undefined, () => 0);
    s.tables.set('acme', [mount('acme', 'secret', 'kv_old')]);
    const release = s.hold();
    const inFlight = index.mounts('acme');
    s.tables.set('acme', []);
    index.invalidate();
    release();
    expect(await inFlight).toHaveLength(1);
    expect(await index.mounts('acme')).toEqual([]);
  });

  it('does not keep a failed read: the next request asks the store again', async () => {
    const s = fakeStore();
    const index = new MountIndex(s.store, () => undefined, () => 0);
    s.tables.set('acme', [mount('acme', 'secret', 'kv_1')]);
    s.failing(true);
    await expect(index.mounts('acme')).rejects.toThrow('store unavailable');
    s.failing(false);
    expect(await index.mounts('acme')).toHaveLength(1);
  });
});

describe('MountIndex.routes', () => {
  it('routes sys, auth and mounted first segments, percent-encoded or not, and nothing else', async () => {
    const s = fakeStore();
    s.tables.set('acme', [mount('acme', 'my kv/team', 'kv_1'), mount('acme', 'secret', 'kv_2')]);
    const index = new MountIndex(s.store, () => undefined);
    await index.reload();
    expect(index.routes('/v1/sys/mounts')).toBe(true);
    expect(index.routes('/v1/auth/token/lookup-self')).toBe(true);
    expect(index.routes('/v1/secret/data/x?version=2')).toBe(true);
    expect(index.routes('/v1/secret?list=true')).toBe(true);
    expect(index.routes('/v1/my%20kv/team/data/x')).toBe(true);
    expect(index.routes('/v1/tokens/self')).toBe(false);
    expect(index.routes('/v1/secretx/data/x')).toBe(false);
    expect(index.routes('/v2/secret/data/x')).toBe(false);
    expect(index.routes('/v1/%E0%A4%A/x')).toBe(false);
  });
});
