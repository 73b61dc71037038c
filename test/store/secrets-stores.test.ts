import { beforeAll, describe, expect, it } from 'vitest';
import type { Mount } from '../../src/secrets/engine.js';
import type { KvKey } from '../../src/secrets/kv/store.js';
import { bindStores, transactor } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * Contract suites for the storage ports of the Vault-compatible API (src/secrets/store.ts,
 * src/secrets/kv/store.ts, the AppRole, cert role and Vault token additions of
 * src/identity/store.ts), on every store in TEST_DATABASES.
 */
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe.each(TEST_DATABASES)('secrets stores on $name', (target) => {
  const database = freshDatabase(target);
  const stores = () => bindStores(database().db, database().dialect);

  beforeAll(async () => {
    for (const name of ['acme', 'globex']) {
      expect(await stores().tenants.create({ name, trustDomain: `${name}.rampart.local`, createdAt: at(0) })).toBe(true);
    }
  });

  describe('MountStore', () => {
    const mount = (tenant: string, path: string, accessor: string): Mount => ({
      tenant,
      path,
      type: 'kv',
      accessor,
      description: 'd',
      options: { version: '2' },
      defaultLeaseTtl: 0,
      maxLeaseTtl: 60,
      createdAt: at(1),
    });

    it('inserts once per tenant and path, lists by path, tunes and deletes', async () => {
      const s = stores().mounts;
      expect(await s.insert(mount('acme', 'secret', 'kv_1'))).toBe(true);
      expect(await s.insert(mount('acme', 'secret', 'kv_2'))).toBe(false);
      expect(await s.insert(mount('globex', 'secret', 'kv_3'))).toBe(true);
      expect(await s.insert(mount('acme', 'a/b', 'kv_4'))).toBe(true);
      expect((await s.list('acme')).map((m) => m.path)).toEqual(['a/b', 'secret']);
      expect((await s.list('acme'))[1]).toEqual(mount('acme', 'secret', 'kv_1'));
      await s.update({ ...mount('acme', 'secret', 'kv_1'), description: 'tuned', defaultLeaseTtl: 30 });
      expect((await s.list('acme'))[1]).toMatchObject({ description: 'tuned', defaultLeaseTtl: 30 });
      expect((await s.allPaths()).sort()).toEqual(['a/b', 'secret']);
      expect(await s.delete('acme', 'secret')).toBe(true);
      expect(await s.delete('acme', 'secret')).toBe(false);
      expect((await s.list('globex')).map((m) => m.accessor)).toEqual(['kv_3']);
    });
  });

  describe('KvStore', () => {
    const key: KvKey = { tenant: 'acme', mount: 'kv_a', path: 'app/db' };

    it('locks metadata (creating it at version 0), keeps versions and prunes', async () => {
      await transactor(database())(async (tx) => {
        const meta = await tx.kv.lockMetadata(key, at(2));
        expect(meta).toMatchObject({ currentVersion: 0, casRequired: false, customMetadata: {} });
        for (const v of [1, 2, 3]) await tx.kv.insertVersion({ ...key, version: v, ciphertext: `c${v}`, createdAt: at(v), deletionTime: null, destroyed: false });
        await tx.kv.putMetadata({ ...meta, currentVersion: 3, oldestVersion: 1, customMetadata: { owner: 'team' }, updatedAt: at(3) });
      });
      const s = stores().kv;
      expect(await s.metadata(key)).toMatchObject({ currentVersion: 3, customMetadata: { owner: 'team' } });
      await s.updateVersion(key, 2, { deletionTime: at(9) });
      await s.updateVersion(key, 1, { destroy: true });
      expect(await s.version(key, 1)).toMatchObject({ ciphertext: null, destroyed: true });
      expect(await s.version(key, 2)).toMatchObject({ ciphertext: 'c2', deletionTime: at(9) });
      await s.pruneBefore(key, 3);
      expect((await s.versions(key)).map((v) => v.version)).toEqual([3]);
      expect(await s.version(key, 4)).toBeUndefined();
    });

    it('lists paths by prefix exactly (no LIKE wildcards, case-sensitive), metadata-only ones too', async () => {
      const s = stores().kv;
      const meta = (path: string, currentVersion: number) => ({
        tenant: 'acme',
        mount: 'kv_list',
        path,
        currentVersion,
        oldestVersion: 1,
        maxVersions: 0,
        casRequired: false,
        deleteVersionAfter: 0,
        customMetadata: {},
        createdAt: at(1),
        updatedAt: at(1),
      });
      for (const p of ['a/x', 'a/y/z', 'A/q', 'a_b', 'a%c', '😀/x', '😀x']) await s.putMetadata(meta(p, 1));
      await s.putMetadata(meta('a/empty', 0));
      expect(await s.paths('acme', 'kv_list', 'a/')).toEqual(['a/empty', 'a/x', 'a/y/z']);
      expect(await s.paths('acme', 'kv_list', 'a_')).toEqual(['a_b']);
      expect(await s.paths('acme', 'kv_list', 'a%')).toEqual(['a%c']);
      // A character outside the BMP is two UTF-16 units but one character to SQL.
      expect(await s.paths('acme', 'kv_list', '😀/')).toEqual(['😀/x']);
      expect(await s.paths('globex', 'kv_list', '')).toEqual([]);
    });

    it('keeps mount config and purges a mount whole', async () => {
      const s = stores().kv;
      await s.putConfig({ tenant: 'acme', mount: 'kv_a', maxVersions: 5, casRequired: true, deleteVersionAfter: 60 });
      expect(await s.config('acme', 'kv_a')).toEqual({ tenant: 'acme', mount: 'kv_a', maxVersions: 5, casRequired: true, deleteVersionAfter: 60 });
      await s.purgeMount('acme', 'kv_a');
      expect(await s.config('acme', 'kv_a')).toBeUndefined();
      expect(await s.metadata(key)).toBeUndefined();
      expect(await s.versions(key)).toEqual([]);
    });
  });

  describe('AclPolicyStore', () => {
    it('puts, replaces, lists and deletes per tenant', async () => {
      const s = stores().aclPolicies;
      await s.put({ tenant: 'acme', name: 'b', hcl: 'one', updatedAt: at(1) });
      await s.put({ tenant: 'acme', name: 'a', hcl: 'two', updatedAt: at(1) });
      await s.put({ tenant: 'acme', name: 'b', hcl: 'three', updatedAt: at(2) });
      expect(await s.get('acme', 'b')).toEqual({ tenant: 'acme', name: 'b', hcl: 'three', updatedAt: at(2) });
      expect(await s.get('globex', 'b')).toBeUndefined();
      expect((await s.list('acme')).map((p) => p.name)).toEqual(['a', 'b']);
      expect(await s.delete('acme', 'a')).toBe(true);
      expect(await s.delete('acme', 'a')).toBe(false);
    });
  });

  describe('SecretsKeyringStore', () => {
    it('initializes once, replaces and records the seal type', async () => {
      const s = stores().secretsKeyring;
      expect(await s.load()).toBeUndefined();
      expect(await s.sealConfig()).toBeUndefined();
      expect(await s.initialize('blob-1', at(1))).toBe(true);
      expect(await s.initialize('blob-2', at(1))).toBe(false);
      expect(await s.sealConfig()).toEqual({ type: 'file', secretShares: 1, secretThreshold: 1 });
      await s.replace('blob-3', at(2));
      await s.setSealConfig({ type: 'shamir', secretShares: 5, secretThreshold: 3 }, at(2));
      expect(await s.load()).toBe('blob-3');
      expect(await transactor(database())((tx) => tx.secretsKeyring.lockKeyring())).toBe('blob-3');
      expect(await s.sealConfig()).toEqual({ type: 'shamir', secretShares: 5, secretThreshold: 3 });
    });
  });

  describe('AppRoleStore', () => {
    it('finds roles by name and role ID within the tenant and spends use limits exactly', async () => {
      const s = stores().appRoles;
      const role = { tenant: 'acme', name: 'web', roleId: 'rid-1', policies: ['p'], secretIdTtl: 0, secretIdNumUses: 2, tokenTtl: 60, tokenMaxTtl: 0, tokenPeriod: 0, createdAt: at(1), secretIdBoundCidrs: ['10.0.0.0/8'], tokenBoundCidrs: ['10.1.0.0/16', '::1'] };
      await s.putRole(role);
      expect(await s.getRole('acme', 'web')).toEqual(role);
      await s.putRole({ ...role, name: 'api', roleId: 'rid-2', secretIdBoundCidrs: [], tokenBoundCidrs: [] });
      expect(await s.getRole('acme', 'api')).toMatchObject({ secretIdBoundCidrs: [], tokenBoundCidrs: [] });
      expect(await s.deleteRole('acme', 'api')).toBe(true);
      expect(await s.roleByRoleId('acme', 'rid-1')).toEqual(role);
      expect(await s.roleByRoleId('globex', 'rid-1')).toBeUndefined();
      await s.insertSecretId({ accessor: 'acc1', tenant: 'acme', role: 'web', secretHash: 'h', usesLeft: 2, createdAt: at(1), expiresAt: undefined });
      await s.insertSecretId({ accessor: 'acc2', tenant: 'acme', role: 'web', secretHash: 'h', usesLeft: undefined, createdAt: at(1), expiresAt: at(5) });
      expect(await s.consumeSecretId('acc1')).toBe(true);
      expect((await s.getSecretId('acc1'))?.usesLeft).toBe(1);
      expect(await s.consumeSecretId('acc1')).toBe(true);
      expect(await s.getSecretId('acc1')).toBeUndefined();
      expect(await s.consumeSecretId('acc1')).toBe(false);
      for (let i = 0; i < 3; i++) expect(await s.consumeSecretId('acc2')).toBe(true);
      expect(await s.getSecretId('acc2')).toMatchObject({ usesLeft: undefined, expiresAt: at(5) });
      expect(await s.deleteSecretId('acc2')).toBe(true);
      expect(await s.deleteSecretId('acc2')).toBe(false);
      expect(await s.listRoles('acme')).toEqual(['web']);
      await s.insertSecretId({ accessor: 'acc3', tenant: 'acme', role: 'web', secretHash: 'h', usesLeft: undefined, createdAt: at(1), expiresAt: undefined });
      expect(await s.deleteRole('acme', 'web')).toBe(true);
      expect(await s.getSecretId('acc3')).toBeUndefined();
    });
  });

  describe('CertRoleStore', () => {
    it('puts, lists and deletes per tenant', async () => {
      const s = stores().certRoles;
      const role = { tenant: 'acme', name: 'web', allowedSpiffeIds: ['spiffe://acme.rampart.local/web/*'], policies: ['p'], tokenTtl: 60, createdAt: at(1) };
      await s.put(role);
      expect(await s.get('acme', 'web')).toEqual(role);
      expect(await s.list('globex')).toEqual([]);
      expect(await s.delete('acme', 'web')).toBe(true);
    });
  });

  describe('TokenStore (Vault token fields)', () => {
    it('round-trips parent, period and max TTL, lists children and renews', async () => {
      const s = stores().tokens;
      const base = { tenant: 'acme', secretHash: 'a'.repeat(64), policies: ['default'], displayName: '', createdBy: null, createdAt: at(1), revokedAt: null };
      await s.insert({ ...base, accessor: 'parent', expiresAt: at(100), renewable: true, creationTtl: 99, explicitMaxExpiresAt: at(500) });
      await s.insert({ ...base, accessor: 'child', expiresAt: at(50), parent: 'parent', period: 30, renewable: false });
      expect(await s.get('child')).toEqual({ ...base, accessor: 'child', expiresAt: at(50), parent: 'parent', period: 30, renewable: false });
      expect(await s.children('acme', 'parent')).toEqual(['child']);
      expect(await s.children('globex', 'parent')).toEqual([]);
      expect(await s.renew('acme', 'parent', at(200))).toBe(true);
      expect((await s.get('parent'))?.expiresAt).toBe(at(200));
      expect(await s.revoke('acme', 'parent', at(3))).toBe(true);
      expect(await s.renew('acme', 'parent', at(300))).toBe(false);
    });
  });
});
