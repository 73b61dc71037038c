import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Dialect } from './database.js';

/**
 * Forward-only migrations, shared by SQLite and PostgreSQL. A migration is never edited once
 * released; a change is a new entry. The dialect is passed in only where the two engines need
 * different column types (auto-increment keys, 64-bit integers).
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  const bigint = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    '0001_foundation': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('tenants')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('trust_domain', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('tokens')
          .addColumn('accessor', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('policies', 'text', (c) => c.notNull())
          .addColumn('display_name', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text')
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema.createIndex('tokens_tenant_created').on('tokens').columns(['tenant', 'created_at']).execute();

        await db.schema
          .createTable('audit_events')
          .addColumn('id', dialect === 'postgres' ? sql`bigint generated always as identity` : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('recorded_at', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('leaf_index', sql.raw(bigint), (c) => c.unique())
          .addColumn('leaf_hash', 'text')
          .execute();
        await db.schema.createIndex('audit_events_tenant_id').on('audit_events').columns(['tenant', 'id']).execute();

        await db.schema
          .createTable('audit_tree')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('size', sql.raw(bigint), (c) => c.notNull())
          .addColumn('frontier', 'text', (c) => c.notNull())
          .addColumn('root_hash', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('audit_tree_heads')
          .addColumn('size', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('root_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('policy_versions')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('store', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('policies', 'text', (c) => c.notNull())
          .addColumn('schema', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('author', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('policy_versions_pk', ['tenant', 'store', 'version'])
          .execute();
        // At most one active version per policy store, even when two activations race.
        await db.schema
          .createIndex('policy_versions_one_active')
          .on('policy_versions')
          .columns(['tenant', 'store'])
          .unique()
          .where(sql.ref('status'), '=', 'active')
          .execute();

        await db.schema
          .createTable('ca_certificates')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('certificate_pem', 'text', (c) => c.notNull())
          .addColumn('private_key', 'text')
          .addColumn('algorithm', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('not_after', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('barrier_keyring')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('ciphertext', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();

      },
    },
    '0003_pki_certificates': {
      async up(db: Kysely<unknown>) {
        // Every certificate POST /v1/pki/sign issued: what revocation, the CRL and OCSP answer from.
        await db.schema
          .createTable('pki_certificates')
          .addColumn('serial_number', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('spiffe_id', 'text', (c) => c.notNull())
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('not_before', 'text', (c) => c.notNull())
          .addColumn('not_after', 'text', (c) => c.notNull())
          .addColumn('certificate_pem', 'text', (c) => c.notNull())
          .addColumn('issued_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .addColumn('revocation_reason', 'text')
          .execute();
        await db.schema.createIndex('pki_certificates_tenant_spiffe_id').on('pki_certificates').columns(['tenant', 'spiffe_id', 'not_after']).execute();
        await db.schema.createIndex('pki_certificates_issuer_revoked').on('pki_certificates').columns(['issuer', 'revoked_at']).execute();

        // Per issuing CA: the last CRL number handed out (RFC 5280 §5.2.3, monotonic) and a
        // revision bumped by every revocation, which tells each replica its cached CRL is stale.
        await db.schema
          .createTable('pki_crl_state')
          .addColumn('issuer', 'text', (c) => c.primaryKey())
          .addColumn('crl_number', 'integer', (c) => c.notNull())
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0002_audit_checkpoints': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('audit_checkpoints')
          .addColumn('size', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('root_hash', 'text', (c) => c.notNull())
          .addColumn('note', 'text', (c) => c.notNull())
          .addColumn('frontier', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('audit_log_key')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('origin', 'text', (c) => c.notNull())
          .addColumn('verifier_key', 'text', (c) => c.notNull())
          .addColumn('private_key', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0005_audit_query': {
      async up(db: Kysely<unknown>) {
        // Indexed copies of the fields audit queries filter on; the payload stays the record.
        for (const column of ['event_time', 'principal_id', 'action', 'resource', 'outcome']) {
          await db.schema.alterTable('audit_events').addColumn(column, 'text').execute();
        }
        const field = (path: string) =>
          dialect === 'postgres' ? sql.raw(`(payload::jsonb #>> '{${path.replaceAll('.', ',')}}')`) : sql.raw(`json_extract(payload, '$.${path}')`);
        await sql`update audit_events set event_time = ${field('time')}, principal_id = ${field('principal.id')},
          action = ${field('action')}, resource = ${field('resource.id')}, outcome = ${field('outcome')}`.execute(db);
        await db.schema.createIndex('audit_events_tenant_time').on('audit_events').columns(['tenant', 'event_time']).execute();
        await db.schema.createIndex('audit_events_tenant_principal').on('audit_events').columns(['tenant', 'principal_id', 'id']).execute();
        await db.schema.createIndex('audit_events_tenant_action').on('audit_events').columns(['tenant', 'action', 'id']).execute();
        await db.schema
          .createTable('audit_salt')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('ciphertext', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0004_audit_sinks': {
      async up(db: Kysely<unknown>) {
        // Per SIEM sink: the next leaf index it must receive (src/audit/sink.ts). Only moves forward.
        await db.schema
          .createTable('audit_sink_cursors')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('next_leaf_index', sql.raw(bigint), (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0006_audit_subjects': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('audit_subject_keys')
          .addColumn('key_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('subject_ref', 'text', (c) => c.notNull())
          .addColumn('sealed_key', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('erased_at', 'text')
          .execute();
        await db.schema.createIndex('audit_subject_keys_subject').on('audit_subject_keys').columns(['tenant', 'subject_ref']).execute();
      },
    },
    '0007_audit_retention': {
      async up(db: Kysely<unknown>) {
        // Retention (src/audit/pruner.ts): a pruned row keeps its leaf index and hash; its payload
        // becomes '' and pruned_at says when. The pruner scans by recorded_at.
        await db.schema.alterTable('audit_events').addColumn('pruned_at', 'text').execute();
        await db.schema.createIndex('audit_events_recorded_at').on('audit_events').columns(['recorded_at', 'leaf_index']).execute();
        await db.schema
          .createTable('audit_legal_hold')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('enabled', 'integer', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('since', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        // The row always exists, so the pruner can lock it (PostgreSQL: FOR SHARE against a concurrent hold).
        await sql`insert into audit_legal_hold (id, enabled, reason, since, updated_at) values (1, 0, '', null, '')`.execute(db);
      },
    },
  };
}

export class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/** Applies every pending migration; throws (with the failing migration's name) if one fails. */
export async function migrateToLatest(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const migrator = new Migrator({ db, provider: new StaticMigrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
