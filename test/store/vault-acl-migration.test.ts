import { describe, expect, it, vi } from 'vitest';
import { aclPoliciesToCedar } from '../../src/secrets/acl/cedar.js';
import { parseAclPolicy } from '../../src/secrets/acl/hcl.js';
import { TEST_DATABASES } from '../support/databases.js';
import { databaseBefore } from '../support/migration-database.js';

const BROAD = 'path "secret/*" { capabilities = ["read"] }';
const NARROW = 'path "secret/private/*" { capabilities = ["create"] }';
const SEED = 'permit (principal in Rampart::Role::"admin", action, resource);';

describe.each(TEST_DATABASES)('migration 0027 on $name', (target) => {
  it('recompiles each tenant’s Vault ACL policies with path precedence, leaves an unchanged one alone, and skips one it cannot compile', async () => {
    const { db, latest, close } = await databaseBefore(target, '0027_vault_acl_precedence');
    try {

      const version = (tenant: string, files: Record<string, string>) => ({
        tenant,
        store: 'rampart',
        version: 1,
        hash: 'h',
        policies: JSON.stringify(files),
        schema: null,
        status: 'active',
        author: 'admin',
        message: 'seed',
        created_at: '2026-01-01T00:00:00.000Z',
      });
      // `acme` has overlapping patterns, compiled as they were before (a union: no `unless`).
      const union = '@id("vault-acl/app/0")\npermit (principal in Rampart::Role::"app", action in [Rampart::Action::"vault:read"], resource is Rampart::VaultPath)\nwhen { true };';
      // `solo` has one policy whose compilation precedence does not change.
      const solo = aclPoliciesToCedar('solo', [{ name: 'only', policy: parseAclPolicy(BROAD) }])!;
      for (const t of ['acme', 'huge', 'solo']) await db.insertInto('tenants').values({ name: t, trust_domain: `${t}.test`, created_at: 't' }).execute();
      await db.insertInto('policy_versions').values(version('acme', { 'seed.cedar': SEED, 'vault-acl.cedar': union })).execute();
      await db.insertInto('policy_versions').values(version('solo', { 'seed.cedar': SEED, 'vault-acl.cedar': solo })).execute();
      // `huge` names more distinct paths than the compiler takes: it keeps its old file, and the
      // other tenants are migrated all the same.
      await db.insertInto('policy_versions').values(version('huge', { 'seed.cedar': SEED, 'vault-acl.cedar': union })).execute();
      for (let p = 0; p < 6; p++) {
        const hcl = Array.from({ length: p === 5 ? 1 : 1000 }, (_, i) => `path "secret/p${p}/k${i}" { capabilities = ["read"] }`).join('\n');
        await db.insertInto('acl_policies').values({ tenant: 'huge', name: `p${p}`, hcl, updated_at: 't' }).execute();
      }
      const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      for (const [tenant, name, hcl] of [
        ['acme', 'app', BROAD],
        ['acme', 'private', NARROW],
        ['solo', 'only', BROAD],
      ] as const) {
        await db.insertInto('acl_policies').values({ tenant, name, hcl, updated_at: 't' }).execute();
      }

      try {
        await latest();
        expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringMatching(/^tenant "huge": Vault ACL policies not recompiled \(.*5001 distinct paths/)]);
      } finally {
        warn.mockRestore();
      }

      const rows = await db.selectFrom('policy_versions').select(['tenant', 'version', 'status', 'author', 'policies']).orderBy('tenant').orderBy('version').execute();
      const expected = aclPoliciesToCedar('acme', [
        { name: 'app', policy: parseAclPolicy(BROAD) },
        { name: 'private', policy: parseAclPolicy(NARROW) },
      ])!;
      expect(expected).toContain('unless');
      expect(rows.map((r) => [r.tenant, Number(r.version), r.status, r.author])).toEqual([
        ['acme', 1, 'superseded', 'admin'],
        ['acme', 2, 'active', 'rampart'],
        ['huge', 1, 'active', 'admin'],
        ['solo', 1, 'active', 'admin'],
      ]);
      expect(JSON.parse(rows[1]!.policies as string)).toEqual({ 'seed.cedar': SEED, 'vault-acl.cedar': expected });
    } finally {
      await close();
    }
  });
});
