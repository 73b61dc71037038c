import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { TokenRecord } from '../../src/identity/store.js';
import { openDatabase, type StoreDatabase } from '../../src/store/database.js';
import type { Database } from '../../src/store/schema.js';
import { bindStores, transactor } from '../../src/store/stores.js';
import { TEST_DATABASES } from '../support/databases.js';
import { freshDatabase } from '../support/fresh-database.js';

/**
 * The transaction boundary (`transactor`) and the migrations, against every store in
 * TEST_DATABASES; each describe block has its own fresh database.
 */

/**
 * Every table and column of src/store/schema.ts. The type below makes this list exhaustive: a
 * table or column added to `Database` without being listed here fails type checking, and the
 * test then compares the list with what the migrations actually created.
 */
const SCHEMA = {
  tenants: ['name', 'trust_domain', 'created_at'],
  tokens: ['accessor', 'tenant', 'secret_hash', 'policies', 'display_name', 'created_by', 'created_at', 'expires_at', 'revoked_at', 'parent', 'period', 'creation_ttl', 'explicit_max_expires_at', 'renewable', 'num_uses', 'uses_left', 'role', 'creation_path', 'bound_cidrs'],
  audit_events: ['id', 'tenant', 'recorded_at', 'payload', 'leaf_index', 'leaf_hash', 'event_time', 'principal_id', 'action', 'resource', 'outcome', 'pruned_at'],
  audit_salt: ['id', 'ciphertext', 'created_at'],
  audit_subject_keys: ['key_id', 'tenant', 'subject_ref', 'sealed_key', 'created_at', 'erased_at'],
  audit_tree: ['id', 'size', 'frontier', 'root_hash', 'updated_at'],
  audit_tree_heads: ['size', 'root_hash', 'created_at'],
  audit_tree_nodes: ['height', 'idx', 'hash'],
  audit_checkpoints: ['size', 'root_hash', 'note', 'frontier', 'created_at'],
  audit_log_key: ['id', 'origin', 'verifier_key', 'private_key', 'created_at'],
  policy_versions: ['tenant', 'store', 'version', 'hash', 'policies', 'schema', 'status', 'author', 'message', 'created_at', 'tests', 'reasons'],
  authz_entities: ['tenant', 'store', 'revision', 'entities', 'updated_at'],
  ca_certificates: ['id', 'tenant', 'role', 'certificate_pem', 'private_key', 'algorithm', 'status', 'not_after', 'created_at', 'activate_after'],
  barrier_keyring: ['id', 'ciphertext', 'updated_at'],
  pki_certificates: ['serial_number', 'tenant', 'spiffe_id', 'issuer', 'not_before', 'not_after', 'certificate_pem', 'issued_at', 'revoked_at', 'revocation_reason'],
  pki_crl_state: ['issuer', 'crl_number', 'revision', 'updated_at'],
  pki_bundle_state: ['id', 'sequence', 'updated_at'],
  audit_sink_cursors: ['name', 'next_leaf_index', 'updated_at'],
  audit_legal_hold: ['id', 'enabled', 'reason', 'since', 'updated_at'],
  pki_registrations: ['id', 'tenant', 'spiffe_id', 'parent', 'selectors', 'dns_names', 'ttl_ms', 'created_at', 'created_by'],
  pki_join_tokens: ['id', 'tenant', 'secret_hash', 'spiffe_id', 'created_at', 'created_by', 'expires_at', 'used_at', 'used_by'],
  pki_agents: ['tenant', 'spiffe_id', 'method', 'selectors', 'attested_at'],
  secrets_keyring: ['id', 'ciphertext', 'seal_type', 'secret_shares', 'secret_threshold', 'updated_at'],
  secrets_mounts: ['tenant', 'path', 'type', 'accessor', 'description', 'options', 'default_lease_ttl', 'max_lease_ttl', 'created_at'],
  kv_metadata: ['tenant', 'mount', 'path', 'current_version', 'oldest_version', 'max_versions', 'cas_required', 'delete_version_after', 'custom_metadata', 'created_at', 'updated_at'],
  kv_versions: ['tenant', 'mount', 'path', 'version', 'ciphertext', 'created_at', 'deletion_time', 'destroyed'],
  kv_config: ['tenant', 'mount', 'max_versions', 'cas_required', 'delete_version_after'],
  acl_policies: ['tenant', 'name', 'hcl', 'updated_at'],
  approle_roles: ['tenant', 'name', 'role_id', 'policies', 'secret_id_ttl', 'secret_id_num_uses', 'token_ttl', 'token_max_ttl', 'token_period', 'created_at', 'secret_id_bound_cidrs', 'token_bound_cidrs'],
  approle_secret_ids: ['accessor', 'tenant', 'role', 'secret_hash', 'uses_left', 'created_at', 'expires_at'],
  cert_roles: ['tenant', 'name', 'allowed_spiffe_ids', 'policies', 'token_ttl', 'created_at'],
  secrets_leases: ['tenant', 'lease_id', 'engine', 'mount', 'issued_at', 'last_renewal_at', 'expires_at', 'max_expires_at', 'renewable', 'default_ttl', 'sealed_data', 'revoke_after', 'revoke_attempts', 'last_error'],
  secrets_database_configs: ['tenant', 'mount', 'name', 'plugin_name', 'connection_url', 'username', 'sealed_password', 'pending_sealed_password', 'allowed_roles', 'verify_connection', 'root_rotation_statements', 'updated_at'],
  secrets_database_roles: ['tenant', 'mount', 'name', 'db_name', 'creation_statements', 'revocation_statements', 'renew_statements', 'default_ttl', 'max_ttl', 'updated_at'],
  secrets_database_static_roles: ['tenant', 'mount', 'name', 'db_name', 'username', 'rotation_period', 'rotation_statements', 'sealed_password', 'pending_sealed_password', 'last_rotated_at', 'next_rotation_at', 'rotation_attempts', 'last_error'],
  transit_keys: ['tenant', 'mount', 'name', 'type', 'derived', 'exportable', 'allow_plaintext_backup', 'deletion_allowed', 'latest_version', 'min_decryption_version', 'min_encryption_version', 'min_available_version', 'created_at', 'updated_at'],
  transit_key_versions: ['tenant', 'mount', 'name', 'version', 'sealed_material', 'public_key', 'created_at'],
  secrets_rotation_policies: ['tenant', 'mount', 'path', 'mount_path', 'period_seconds', 'grace_seconds', 'generator', 'next_rotation_at', 'last_rotated_at', 'state', 'attempts', 'last_error'],
  secrets_grace_versions: ['tenant', 'mount', 'path', 'version', 'mount_path', 'readable_until'],
  secrets_events: ['id', 'tenant', 'kind', 'mount_path', 'path', 'version', 'occurred_at', 'previous_readable_until'],
  secrets_event_head: ['id', 'sequence', 'updated_at'],
  pki_events: ['sequence', 'tenant', 'type', 'payload', 'created_at'],
  pki_event_serials: ['issuer', 'sequence', 'serial_number'],
  pki_event_head: ['id', 'sequence', 'updated_at'],
  pki_crl_bases: ['issuer', 'crl_number', 'event_sequence', 'next_update'],
  vault_token_roles: ['tenant', 'name', 'allowed_policies', 'disallowed_policies', 'orphan', 'renewable', 'path_suffix', 'token_period', 'token_explicit_max_ttl', 'token_num_uses', 'token_no_default_policy', 'updated_at', 'token_bound_cidrs'],
  vault_wrapped_responses: ['accessor', 'tenant', 'secret_hash', 'creation_path', 'creation_time', 'ttl', 'expires_at', 'wrapped_accessor', 'ciphertext'],
  kv1_entries: ['tenant', 'mount', 'path', 'ciphertext', 'created_at', 'updated_at'],
} as const satisfies { readonly [T in keyof Database]: readonly (keyof Database[T])[] };

type UnlistedColumns = { [T in keyof Database]: Exclude<keyof Database[T], (typeof SCHEMA)[T][number]> }[keyof Database];
const everyColumnListed: [UnlistedColumns] extends [never] ? true : never = true;

/** Kysely's own bookkeeping tables. */
const MIGRATOR_TABLES = ['kysely_migration', 'kysely_migration_lock'];

async function tableNames(database: StoreDatabase): Promise<string[]> {
  const { rows } =
    database.dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(database.db)
      : await sql<{ name: string }>`select table_name as name from information_schema.tables
          where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(database.db);
  return rows.map((r) => r.name).sort();
}

async function columnNames(database: StoreDatabase, table: string): Promise<string[]> {
  const { rows } =
    database.dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(database.db)
      : await sql<{ name: string }>`select column_name as name from information_schema.columns
          where table_schema = current_schema() and table_name = ${table}`.execute(database.db);
  return rows.map((r) => r.name).sort();
}

async function appliedMigrations(database: StoreDatabase): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(database.db);
  return rows.map((r) => r.name);
}

async function rowCount(database: StoreDatabase, table: 'tenants' | 'tokens' | 'audit_events'): Promise<number> {
  const row = await database.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

const clock = new ManualClock();

function token(accessor: string, tenant: string): TokenRecord {
  return {
    accessor,
    tenant,
    secretHash: 'f'.repeat(64),
    policies: ['tenant-admin'],
    displayName: accessor,
    createdBy: null,
    createdAt: clock.now().toISOString(),
    expiresAt: null,
    revokedAt: null,
  };
}

const auditRow = (tenant: string, note: string) => ({ tenant, recordedAt: clock.now().toISOString(), payload: JSON.stringify({ tenant, note }) });

describe.each(TEST_DATABASES)('store transactions and migrations on $name', (target) => {
  describe('transactor', () => {
    const database = freshDatabase(target);
    const stores = () => bindStores(database().db, database().dialect);

    it('rolls back the tenant, the token and the audit row together when the work throws', async () => {
      const transact = transactor(database());
      const boom = new Error('boom');
      const seenInside: unknown[] = [];
      const outcome = transact(async (s) => {
        expect(await s.tenants.create({ name: 'doomed', trustDomain: 'doomed.rampart.local', createdAt: clock.now().toISOString() })).toBe(true);
        await s.tokens.insert(token('acc-doomed', 'doomed'));
        await s.audit.insert([auditRow('doomed', 'created')]);
        // Inside the transaction the work sees its own writes.
        seenInside.push((await s.tenants.get('doomed'))?.name, (await s.tokens.get('acc-doomed'))?.tenant, await s.audit.count());
        throw boom;
      });
      await expect(outcome).rejects.toBe(boom);
      expect(seenInside).toEqual(['doomed', 'doomed', 1]);

      expect(await stores().tenants.get('doomed')).toBeUndefined();
      expect(await stores().tokens.get('acc-doomed')).toBeUndefined();
      expect(await stores().audit.count()).toBe(0);
      expect(await rowCount(database(), 'tenants')).toBe(0);
      expect(await rowCount(database(), 'tokens')).toBe(0);
      expect(await rowCount(database(), 'audit_events')).toBe(0);
    });

    it('rolls back earlier writes when a later store call fails', async () => {
      const transact = transactor(database());
      const outcome = transact(async (s) => {
        await s.tenants.create({ name: 'half', trustDomain: 'half.rampart.local', createdAt: clock.now().toISOString() });
        await s.audit.insert([auditRow('half', 'created')]);
        await s.tokens.insert(token('acc-orphan', 'no-such-tenant')); // foreign key violation
      });
      await expect(outcome).rejects.toThrow();
      expect(await stores().tenants.get('half')).toBeUndefined();
      expect(await stores().tokens.get('acc-orphan')).toBeUndefined();
      expect(await rowCount(database(), 'tenants')).toBe(0);
      expect(await rowCount(database(), 'audit_events')).toBe(0);
    });

    it('commits the work and returns its result', async () => {
      const transact = transactor(database());
      const createdAt = clock.now().toISOString();
      const result = await transact(async (s) => {
        await s.tenants.create({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt });
        await s.tokens.insert(token('acc-acme', 'acme'));
        await s.audit.insert([auditRow('acme', 'created')]);
        return 'done';
      });
      expect(result).toBe('done');
      expect(await stores().tenants.get('acme')).toEqual({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt });
      expect(await stores().tokens.get('acc-acme')).toEqual(token('acc-acme', 'acme'));
      const events = await stores().audit.listEvents('acme', 0, 10);
      expect(events.items.map((e) => e.payload)).toEqual([JSON.stringify({ tenant: 'acme', note: 'created' })]);
    });

    it('keeps a failing transaction from taking a concurrent committing one with it', async () => {
      const transact = transactor(database());
      const [committed, failed] = await Promise.allSettled([
        transact(async (s) => {
          await s.tenants.create({ name: 'kept', trustDomain: 'kept.rampart.local', createdAt: clock.now().toISOString() });
          await s.audit.insert([auditRow('kept', 'created')]);
        }),
        transact(async (s) => {
          await s.tenants.create({ name: 'dropped', trustDomain: 'dropped.rampart.local', createdAt: clock.now().toISOString() });
          await s.audit.insert([auditRow('dropped', 'created')]);
          throw new Error('dropped');
        }),
      ]);
      expect(committed.status).toBe('fulfilled');
      expect(failed.status).toBe('rejected');
      expect(await stores().tenants.get('kept')).toBeDefined();
      expect(await stores().tenants.get('dropped')).toBeUndefined();
      expect((await stores().audit.listEvents('kept', 0, 10)).items).toHaveLength(1);
      expect((await stores().audit.listEvents('dropped', 0, 10)).items).toEqual([]);
    });
  });

  describe('migrations', () => {
    it('creates exactly the tables and columns of schema.ts', async () => {
      expect(everyColumnListed).toBe(true);
      const dataDir = mkdtempSync(join(tmpdir(), 'rampart-schema-'));
      const { url, drop } = await target.create();
      const database = await openDatabase({ databaseUrl: url, dataDir });
      try {
        expect(await tableNames(database)).toEqual([...Object.keys(SCHEMA), ...MIGRATOR_TABLES].sort());
        for (const [table, columns] of Object.entries(SCHEMA)) {
          expect({ table, columns: await columnNames(database, table) }).toEqual({ table, columns: [...columns].sort() });
        }
        if (database.dialect === 'sqlite') {
          const { rows } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(database.db);
          expect(rows).toEqual([{ journal_mode: 'wal' }]);
          const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(database.db);
          expect(fk.rows).toEqual([{ foreign_keys: 1 }]);
        }
      } finally {
        await database.close();
        await drop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });

    it('are idempotent: opening the same database again keeps data and applies nothing twice', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'rampart-reopen-'));
      const { url, drop } = await target.create();
      const opened: StoreDatabase[] = [];
      try {
        const first = await openDatabase({ databaseUrl: url, dataDir });
        opened.push(first);
        const applied = await appliedMigrations(first);
        expect(applied.length).toBeGreaterThan(0);
        expect(new Set(applied).size).toBe(applied.length);
        const createdAt = clock.now().toISOString();
        expect(await bindStores(first.db, first.dialect).tenants.create({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt })).toBe(true);

        // A second handle on the same database while the first is still open.
        const second = await openDatabase({ databaseUrl: url, dataDir });
        opened.push(second);
        expect(await appliedMigrations(second)).toEqual(applied);
        expect(await bindStores(second.db, second.dialect).tenants.get('acme')).toEqual({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt });

        await first.close();
        await second.close();
        opened.length = 0;

        // And again after both were closed.
        const third = await openDatabase({ databaseUrl: url, dataDir });
        opened.push(third);
        expect(await appliedMigrations(third)).toEqual(applied);
        expect(await tableNames(third)).toEqual([...Object.keys(SCHEMA), ...MIGRATOR_TABLES].sort());
        expect(await bindStores(third.db, third.dialect).tenants.get('acme')).toEqual({ name: 'acme', trustDomain: 'acme.rampart.local', createdAt });
      } finally {
        for (const d of opened) await d.close();
        await drop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });

    // Several control-plane replicas start together on one PostgreSQL database; SQLite is one
    // process per file, so this applies to PostgreSQL only.
    it.runIf(target.name === 'postgres')('lets replicas that start together migrate once', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'rampart-replicas-'));
      const { url, drop } = await target.create();
      const opened: StoreDatabase[] = [];
      try {
        const results = await Promise.allSettled([1, 2, 3].map(() => openDatabase({ databaseUrl: url, dataDir })));
        for (const r of results) if (r.status === 'fulfilled') opened.push(r.value);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
        const applied = await appliedMigrations(opened[0]!);
        expect(new Set(applied).size).toBe(applied.length);
        expect(await tableNames(opened[0]!)).toEqual([...Object.keys(SCHEMA), ...MIGRATOR_TABLES].sort());
      } finally {
        for (const d of opened) await d.close();
        await drop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
});
