import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Dialect } from './database.js';
import { backfillTreeNodes } from './audit-tree-nodes.js';
import { recompileVaultAcl } from './vault-acl-recompile.js';

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
    '0008_audit_tiles': {
      async up(db: Kysely<unknown>) {
        // Interior nodes of the audit tree (src/audit/tiles.ts STORED_NODE_MIN_HEIGHT), so that a
        // proof is a few indexed reads at any size; a log integrated before this is backfilled.
        await db.schema
          .createTable('audit_tree_nodes')
          .addColumn('height', 'integer', (c) => c.notNull())
          .addColumn('idx', sql.raw(bigint), (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('audit_tree_nodes_pk', ['height', 'idx'])
          // SQLite: the primary key is the table (one B-tree to descend per node, not two).
          .$call((t) => (dialect === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
          .execute();
        const { rows } = await sql<{ size: number | string }>`select size from audit_tree where id = 1`.execute(db);
        await backfillTreeNodes(db, dialect, Number(rows[0]?.size ?? 0));
      },
    },
    '0010_authz_stores': {
      async up(db: Kysely<unknown>) {
        // Policy stores (src/authz/policy-versions.ts): a version keeps its policy tests (JSON
        // file → YAML) and, when rejected, why (JSON array of lines).
        await db.schema.alterTable('policy_versions').addColumn('tests', 'text').execute();
        await db.schema.alterTable('policy_versions').addColumn('reasons', 'text').execute();
        // One entity set per policy store, replaced whole; `revision` counts the replacements.
        await db.schema
          .createTable('authz_entities')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('store', 'text', (c) => c.notNull())
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('entities', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('authz_entities_pk', ['tenant', 'store'])
          .execute();
      },
    },
    '0013_secrets_core': {
      async up(db: Kysely<unknown>) {
        // The secrets barrier's keyring (src/secrets/barrier.ts), apart from the infrastructure
        // one so that sys/init can put it under Shamir shares; one row, id 1.
        await db.schema
          .createTable('secrets_keyring')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('ciphertext', 'text', (c) => c.notNull())
          .addColumn('seal_type', 'text', (c) => c.notNull())
          .addColumn('secret_shares', 'integer', (c) => c.notNull())
          .addColumn('secret_threshold', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('secrets_mounts')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('accessor', 'text', (c) => c.notNull().unique())
          .addColumn('description', 'text', (c) => c.notNull())
          .addColumn('options', 'text', (c) => c.notNull())
          .addColumn('default_lease_ttl', 'integer', (c) => c.notNull())
          .addColumn('max_lease_ttl', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('secrets_mounts_pk', ['tenant', 'path'])
          .execute();
        // KV v2 (src/secrets/kv/): `mount` is the mount's accessor, so a remount starts empty.
        await db.schema
          .createTable('kv_metadata')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('current_version', 'integer', (c) => c.notNull())
          .addColumn('oldest_version', 'integer', (c) => c.notNull())
          .addColumn('max_versions', 'integer', (c) => c.notNull())
          .addColumn('cas_required', 'integer', (c) => c.notNull())
          .addColumn('delete_version_after', 'integer', (c) => c.notNull())
          .addColumn('custom_metadata', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('kv_metadata_pk', ['tenant', 'mount', 'path'])
          .execute();
        await db.schema
          .createTable('kv_versions')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('ciphertext', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('deletion_time', 'text')
          .addColumn('destroyed', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('kv_versions_pk', ['tenant', 'mount', 'path', 'version'])
          .execute();
        await db.schema
          .createTable('kv_config')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('max_versions', 'integer', (c) => c.notNull())
          .addColumn('cas_required', 'integer', (c) => c.notNull())
          .addColumn('delete_version_after', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('kv_config_pk', ['tenant', 'mount'])
          .execute();
        // Vault ACL policies as written; their Cedar translation is a file of the tenant's `rampart` store.
        await db.schema
          .createTable('acl_policies')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('hcl', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('acl_policies_pk', ['tenant', 'name'])
          .execute();
      },
    },
    '0014_secrets_auth': {
      async up(db: Kysely<unknown>) {
        // Vault token semantics (src/identity/tokens.ts): parent for revocation trees, periodic
        // and explicit-max TTLs for renewal. Null on tokens created before, or by POST /v1/tokens.
        for (const [column, type] of [
          ['parent', 'text'],
          ['period', 'integer'],
          ['creation_ttl', 'integer'],
          ['explicit_max_expires_at', 'text'],
          ['renewable', 'integer'],
        ] as const) {
          await db.schema.alterTable('tokens').addColumn(column, type).execute();
        }
        await db.schema.createIndex('tokens_tenant_parent').on('tokens').columns(['tenant', 'parent']).execute();
        // AppRole (src/identity/approle.ts): roles, and their secret IDs stored as SHA-256 only.
        await db.schema
          .createTable('approle_roles')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('role_id', 'text', (c) => c.notNull().unique())
          .addColumn('policies', 'text', (c) => c.notNull())
          .addColumn('secret_id_ttl', 'integer', (c) => c.notNull())
          .addColumn('secret_id_num_uses', 'integer', (c) => c.notNull())
          .addColumn('token_ttl', 'integer', (c) => c.notNull())
          .addColumn('token_max_ttl', 'integer', (c) => c.notNull())
          .addColumn('token_period', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('approle_roles_pk', ['tenant', 'name'])
          .execute();
        await db.schema
          .createTable('approle_secret_ids')
          .addColumn('accessor', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('uses_left', 'integer')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text')
          .execute();
        await db.schema.createIndex('approle_secret_ids_role').on('approle_secret_ids').columns(['tenant', 'role']).execute();
        // Cert auth (auth/cert): which SPIFFE IDs a role accepts and the policies it grants.
        await db.schema
          .createTable('cert_roles')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('allowed_spiffe_ids', 'text', (c) => c.notNull())
          .addColumn('policies', 'text', (c) => c.notNull())
          .addColumn('token_ttl', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('cert_roles_pk', ['tenant', 'name'])
          .execute();
      },
    },
    '0015_secrets_transit': {
      async up(db: Kysely<unknown>) {
        // Transit named keys (src/secrets/transit/): one row per key with its configuration, one
        // per key version holding the barrier-sealed material. Flags are 0/1 integers on both engines.
        await db.schema
          .createTable('transit_keys')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('derived', 'integer', (c) => c.notNull())
          .addColumn('exportable', 'integer', (c) => c.notNull())
          .addColumn('allow_plaintext_backup', 'integer', (c) => c.notNull())
          .addColumn('deletion_allowed', 'integer', (c) => c.notNull())
          .addColumn('latest_version', 'integer', (c) => c.notNull())
          .addColumn('min_decryption_version', 'integer', (c) => c.notNull())
          .addColumn('min_encryption_version', 'integer', (c) => c.notNull())
          .addColumn('min_available_version', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('transit_keys_pk', ['tenant', 'mount', 'name'])
          .execute();
        await db.schema
          .createTable('transit_key_versions')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('sealed_material', 'text', (c) => c.notNull())
          .addColumn('public_key', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('transit_key_versions_pk', ['tenant', 'mount', 'name', 'version'])
          .execute();
      },
    },
    '0016_secrets_leases': {
      async up(db: Kysely<unknown>) {
        // Leases (src/secrets/leases/): `revoke_after` is when the expiry worker next acts on a
        // lease — its expiry, or the next retry after a failed revocation — so one index serves it.
        await db.schema
          .createTable('secrets_leases')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('lease_id', 'text', (c) => c.notNull())
          .addColumn('engine', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('issued_at', 'text', (c) => c.notNull())
          .addColumn('last_renewal_at', 'text')
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('max_expires_at', 'text', (c) => c.notNull())
          .addColumn('renewable', 'integer', (c) => c.notNull())
          .addColumn('default_ttl', 'integer', (c) => c.notNull())
          .addColumn('sealed_data', 'text', (c) => c.notNull())
          .addColumn('revoke_after', 'text', (c) => c.notNull())
          .addColumn('revoke_attempts', 'integer', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addPrimaryKeyConstraint('secrets_leases_pk', ['tenant', 'lease_id'])
          .execute();
        await db.schema.createIndex('secrets_leases_revoke_after').on('secrets_leases').columns(['revoke_after']).execute();
      },
    },
    '0017_secrets_database': {
      async up(db: Kysely<unknown>) {
        // The database secrets engine (src/secrets/database/). Lists of SQL statements are JSON
        // arrays; passwords are barrier ciphertexts; TTLs and periods are seconds.
        await db.schema
          .createTable('secrets_database_configs')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('plugin_name', 'text', (c) => c.notNull())
          .addColumn('connection_url', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('sealed_password', 'text', (c) => c.notNull())
          .addColumn('allowed_roles', 'text', (c) => c.notNull())
          .addColumn('verify_connection', 'integer', (c) => c.notNull())
          .addColumn('root_rotation_statements', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('secrets_database_configs_pk', ['tenant', 'mount', 'name'])
          .execute();
        await db.schema
          .createTable('secrets_database_roles')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('db_name', 'text', (c) => c.notNull())
          .addColumn('creation_statements', 'text', (c) => c.notNull())
          .addColumn('revocation_statements', 'text', (c) => c.notNull())
          .addColumn('renew_statements', 'text', (c) => c.notNull())
          .addColumn('default_ttl', 'integer', (c) => c.notNull())
          .addColumn('max_ttl', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('secrets_database_roles_pk', ['tenant', 'mount', 'name'])
          .execute();
        await db.schema
          .createTable('secrets_database_static_roles')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('db_name', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('rotation_period', 'integer', (c) => c.notNull())
          .addColumn('rotation_statements', 'text', (c) => c.notNull())
          .addColumn('sealed_password', 'text', (c) => c.notNull())
          .addColumn('last_rotated_at', 'text', (c) => c.notNull())
          .addColumn('next_rotation_at', 'text', (c) => c.notNull())
          .addColumn('rotation_attempts', 'integer', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addPrimaryKeyConstraint('secrets_database_static_roles_pk', ['tenant', 'mount', 'name'])
          .execute();
        await db.schema
          .createIndex('secrets_database_static_roles_next')
          .on('secrets_database_static_roles')
          .columns(['next_rotation_at'])
          .execute();
      },
    },
    '0018_pki_registrations': {
      async up(db: Kysely<unknown>) {
        // Registration entries (src/pki/registration.ts); selectors and DNS names are JSON arrays.
        await db.schema
          .createTable('pki_registrations')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('spiffe_id', 'text', (c) => c.notNull())
          .addColumn('parent', 'text', (c) => c.notNull())
          .addColumn('selectors', 'text', (c) => c.notNull())
          .addColumn('dns_names', 'text', (c) => c.notNull())
          .addColumn('ttl_ms', sql.raw(bigint))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('pki_registrations_tenant_parent').on('pki_registrations').columns(['tenant', 'parent']).execute();
        // SPIRE's rule: no two entries with the same SPIFFE ID, parent and (sorted) selectors.
        await db.schema.createIndex('pki_registrations_unique').on('pki_registrations').columns(['tenant', 'spiffe_id', 'parent', 'selectors']).unique().execute();
      },
    },
    '0019_pki_attestation': {
      async up(db: Kysely<unknown>) {
        // Join tokens (src/pki/join-token.ts): only the secret's hash is kept; used_at is set once.
        await db.schema
          .createTable('pki_join_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('spiffe_id', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('used_at', 'text')
          .addColumn('used_by', 'text')
          .execute();
        // Attested agents and the node selectors they proved, for entries whose parent is a selector.
        await db.schema
          .createTable('pki_agents')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('spiffe_id', 'text', (c) => c.notNull())
          .addColumn('method', 'text', (c) => c.notNull())
          .addColumn('selectors', 'text', (c) => c.notNull())
          .addColumn('attested_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('pki_agents_pk', ['tenant', 'spiffe_id'])
          .execute();
      },
    },
    '0020_pki_rotation': {
      async up(db: Kysely<unknown>) {
        // CA rotation (src/pki/rotation.ts): a prepared intermediate activates at activate_after.
        await db.schema.alterTable('ca_certificates').addColumn('activate_after', 'text').execute();
        // The trust bundle's SPIFFE sequence number, bumped on every change of the trusted CA set.
        await db.schema
          .createTable('pki_bundle_state')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('sequence', sql.raw(bigint), (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0021_pki_more': {
      async up(db: Kysely<unknown>) {
        // An issuer's last expiry (CertificateStore.lastExpiry) decides when a previous intermediate retires.
        await db.schema.createIndex('pki_certificates_issuer_not_after').on('pki_certificates').columns(['issuer', 'not_after']).execute();
      },
    },
    '0022_secrets_rotation': {
      async up(db: Kysely<unknown>) {
        // KV rotation policies and schedules (src/secrets/rotation/, docs/secrets.md#rotation).
        await db.schema
          .createTable('secrets_rotation_policies')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('mount_path', 'text', (c) => c.notNull())
          .addColumn('period_seconds', sql.raw(bigint), (c) => c.notNull())
          .addColumn('grace_seconds', sql.raw(bigint), (c) => c.notNull())
          .addColumn('generator', 'text')
          .addColumn('next_rotation_at', 'text', (c) => c.notNull())
          .addColumn('last_rotated_at', 'text')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addPrimaryKeyConstraint('secrets_rotation_policies_pk', ['tenant', 'mount', 'path'])
          .execute();
        await db.schema.createIndex('secrets_rotation_policies_due').on('secrets_rotation_policies').columns(['state', 'next_rotation_at']).execute();
        await db.schema
          .createTable('secrets_grace_versions')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('mount_path', 'text', (c) => c.notNull())
          .addColumn('readable_until', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('secrets_grace_versions_pk', ['tenant', 'mount', 'path', 'version'])
          .execute();
        await db.schema.createIndex('secrets_grace_versions_until').on('secrets_grace_versions').columns(['readable_until']).execute();
        // Secret change events, in commit order: the id is taken from secrets_event_head inside the
        // writing transaction, whose row lock (PostgreSQL) or write lock (SQLite) is held until it
        // ends, so a reader that has seen N never later finds a smaller id appear (as pki_events).
        await db.schema
          .createTable('secrets_events')
          .addColumn('id', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('mount_path', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('version', 'integer')
          .addColumn('occurred_at', 'text', (c) => c.notNull())
          .addColumn('previous_readable_until', 'text')
          .execute();
        await db.schema.createIndex('secrets_events_tenant_id').on('secrets_events').columns(['tenant', 'id']).execute();
        await db.schema.createIndex('secrets_events_occurred').on('secrets_events').columns(['occurred_at']).execute();
        await db.schema
          .createTable('secrets_event_head')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('sequence', sql.raw(bigint), (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0025_pki_replicas': {
      async up(db: Kysely<unknown>) {
        // The PKI change log (src/pki/replica-sync.ts): revocations in commit order, so that every
        // replica delivers each one to its event-stream subscribers exactly once. The sequence is
        // taken from pki_event_head inside the revoking transaction: its row lock makes sequence
        // order commit order, so a reader that has seen N never later finds a smaller one.
        await db.schema
          .createTable('pki_events')
          .addColumn('sequence', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('pki_events_created').on('pki_events').columns(['created_at']).execute();
        // The certificates each entry revoked, by issuer: what a delta CRL lists (a join, not a scan).
        await db.schema
          .createTable('pki_event_serials')
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('sequence', sql.raw(bigint), (c) => c.notNull())
          .addColumn('serial_number', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('pki_event_serials_pk', ['issuer', 'sequence', 'serial_number'])
          .execute();
        await db.schema
          .createTable('pki_event_head')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('sequence', sql.raw(bigint), (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        // Complete CRLs still within their nextUpdate, and the change-log position each was built
        // at: the base a delta CRL names and the point it lists changes from (src/pki/crl.ts).
        await db.schema
          .createTable('pki_crl_bases')
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('crl_number', sql.raw(bigint), (c) => c.notNull())
          .addColumn('event_sequence', sql.raw(bigint), (c) => c.notNull())
          .addColumn('next_update', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('pki_crl_bases_pk', ['issuer', 'crl_number'])
          .execute();
        if (dialect !== 'postgres') return;
        // Other replicas hear of a change when it commits (NOTIFY is transactional), whichever
        // code path wrote it; they re-read the store, so the payload is only a hint of what moved.
        await sql`create function rampart_pki_notify() returns trigger language plpgsql as $$
          begin perform pg_notify('rampart_pki', TG_ARGV[0]); return null; end $$`.execute(db);
        await sql`create trigger pki_events_notify after insert on pki_events for each statement execute function rampart_pki_notify('events')`.execute(db);
        await sql`create trigger pki_bundle_state_notify after insert or update on pki_bundle_state for each statement execute function rampart_pki_notify('bundle')`.execute(db);
      },
    },
    '0023_vault_tokens_wrapping': {
      async up(db: Kysely<unknown>) {
        // Use-limited tokens (auth/token num_uses): `num_uses` as created, `uses_left` spent by one
        // conditional UPDATE per authenticated request; `role` and `creation_path` of token roles.
        for (const [column, type] of [
          ['num_uses', 'integer'],
          ['uses_left', 'integer'],
          ['role', 'text'],
          ['creation_path', 'text'],
        ] as const) {
          await db.schema.alterTable('tokens').addColumn(column, type).execute();
        }
        // Token roles (auth/token/roles/<name>, src/identity/token-roles.ts).
        await db.schema
          .createTable('vault_token_roles')
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('allowed_policies', 'text', (c) => c.notNull())
          .addColumn('disallowed_policies', 'text', (c) => c.notNull())
          .addColumn('orphan', 'integer', (c) => c.notNull())
          .addColumn('renewable', 'integer', (c) => c.notNull())
          .addColumn('path_suffix', 'text', (c) => c.notNull())
          .addColumn('token_period', 'integer', (c) => c.notNull())
          .addColumn('token_explicit_max_ttl', 'integer', (c) => c.notNull())
          .addColumn('token_num_uses', 'integer', (c) => c.notNull())
          .addColumn('token_no_default_policy', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('vault_token_roles_pk', ['tenant', 'name'])
          .execute();
        // Response wrapping (src/secrets/wrapping/): the wrapped response only as barrier
        // ciphertext, the wrapping token's secret only as SHA-256; a row is deleted by its unwrap.
        await db.schema
          .createTable('vault_wrapped_responses')
          .addColumn('accessor', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull().references('tenants.name'))
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('creation_path', 'text', (c) => c.notNull())
          .addColumn('creation_time', 'text', (c) => c.notNull())
          .addColumn('ttl', 'integer', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('wrapped_accessor', 'text')
          .addColumn('ciphertext', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('vault_wrapped_responses_expires').on('vault_wrapped_responses').columns(['expires_at']).execute();
        // KV version 1 (src/secrets/kv1/): one barrier ciphertext per path, keyed by the mount's accessor.
        await db.schema
          .createTable('kv1_entries')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('mount', 'text', (c) => c.notNull())
          .addColumn('path', 'text', (c) => c.notNull())
          .addColumn('ciphertext', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('kv1_entries_pk', ['tenant', 'mount', 'path'])
          .execute();
      },
    },
    '0026_database_pending_password': {
      async up(db: Kysely<unknown>) {
        // The new password of a rotation under way, sealed before the target's `ALTER ROLE` and
        // cleared when it is recorded as current (src/secrets/database/password-slot.ts); null
        // when none is. Both tables that hold an engine-owned password get one.
        for (const table of ['secrets_database_configs', 'secrets_database_static_roles'] as const) {
          await db.schema.alterTable(table).addColumn('pending_sealed_password', 'text').execute();
        }
      },
    },
    '0027_vault_acl_precedence': {
      async up(db: Kysely<unknown>) {
        // Vault ACL policies were compiled to Cedar as the union of every matching rule; they
        // are now compiled with Vault's most-specific-path precedence (src/secrets/acl/cedar.ts).
        // Each tenant with ACL policies gets its `rampart` policy set recompiled from the stored
        // HCL as a new active version, so a policy means after the upgrade what it means on Vault.
        await recompileVaultAcl(db, dialect);
      },
    },
    '0028_bound_cidrs': {
      async up(db: Kysely<unknown>) {
        // CIDR binding (src/identity/cidr.ts), each a JSON array of blocks; null binds nothing.
        // A token is used only from its blocks; a token role and an AppRole role hand theirs to
        // the tokens they make; an AppRole secret ID logs in only from the role's blocks.
        await db.schema.alterTable('tokens').addColumn('bound_cidrs', 'text').execute();
        await db.schema.alterTable('vault_token_roles').addColumn('token_bound_cidrs', 'text').execute();
        for (const column of ['secret_id_bound_cidrs', 'token_bound_cidrs']) {
          await db.schema.alterTable('approle_roles').addColumn(column, 'text').execute();
        }
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
