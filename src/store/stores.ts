import type { LegalHoldStore } from '../audit/retention-store.js';
import type { AuditStore } from '../audit/store.js';
import type { SubjectKeyStore } from '../audit/subjects.js';
import type { PolicyStore } from '../authz/store.js';
import type { EntityStore } from '../authz/store.js';
import type { TenantStore, TokenRoleStore, TokenStore } from '../identity/store.js';
import type { Kv1Store } from '../secrets/kv1/store.js';
import type { WrappingStore } from '../secrets/wrapping/store.js';
import { SqlKv1Store } from './kv1-store.js';
import { SqlTokenRoleStore } from './token-role-store.js';
import { SqlWrappingStore } from './wrapping-store.js';
import type { CaStore, CertificateStore } from '../pki/store.js';
import type { AgentStore } from '../pki/attestation-store.js';
import type { JoinTokenStore } from '../pki/join-token-store.js';
import type { RegistrationStore } from '../pki/registration-store.js';
import { SqlAgentStore, SqlJoinTokenStore } from './attestation-store.js';
import { SqlRegistrationStore } from './registration-store.js';
import type { CrlBaseStore } from '../pki/crl.js';
import type { PkiEventStore } from '../pki/events.js';
import { SqlCrlBaseStore, SqlPkiEventStore } from './pki-event-store.js';
import type { KeyringStore } from '../secrets/store.js';
import type { AclPolicyStore, MountStore, SecretsKeyringStore } from '../secrets/store.js';
import type { KvStore } from '../secrets/kv/store.js';
import { SqlAclPolicyStore } from './acl-policy-store.js';
import type { AppRoleStore, CertRoleStore } from '../identity/store.js';
import { SqlAppRoleStore } from './approle-store.js';
import { SqlCertRoleStore } from './cert-role-store.js';
import type { DatabaseStore } from '../secrets/database/store.js';
import type { LeaseStore } from '../secrets/leases/store.js';
import { SqlDatabaseStore } from './database-store.js';
import { SqlLeaseStore } from './lease-store.js';
import { SqlKvStore } from './kv-store.js';
import type { RotationStore } from '../secrets/rotation/store.js';
import { SqlRotationStore } from './rotation-store.js';
import { SqlMountStore } from './mount-store.js';
import { SqlSecretsKeyringStore } from './secrets-keyring-store.js';
import { SqlAuditStore } from './audit-store.js';
import { SqlCaStore } from './ca-store.js';
import { SqlCertificateStore } from './certificate-store.js';
import type { StoreDatabase } from './database.js';
import { GroupCommitter, type GroupCommitOptions } from './group-commit.js';
import { SqlKeyringStore } from './keyring-store.js';
import { SqlLegalHoldStore } from './legal-hold-store.js';
import { SqlPolicyStore } from './policy-store.js';
import { SqlEntityStore } from './entity-store.js';
import { SqlSubjectKeyStore } from './subject-key-store.js';
import type { Database } from './schema.js';
import { SqlTenantStore } from './tenant-store.js';
import { SqlTokenStore } from './token-store.js';
import type { TransitKeyStore } from '../secrets/transit/store.js';
import { SqlTransitKeyStore } from './transit-key-store.js';
import type { Kysely } from 'kysely';

/** Every capability's storage port, bound to one connection or one transaction. */
export interface Stores {
  readonly tenants: TenantStore;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;
  /** The entity store of each tenant's policy stores (src/authz/store.ts). */
  readonly entities: EntityStore;
  readonly audit: AuditStore;
  readonly ca: CaStore;
  readonly certificates: CertificateStore;
  /** Registration entries, join tokens and attested agents (docs/pki.md). */
  readonly registrations: RegistrationStore;
  readonly joinTokens: JoinTokenStore;
  readonly agents: AgentStore;
  /** The PKI change log every replica reads revocations from (src/pki/replica-sync.ts). */
  readonly pkiEvents: PkiEventStore;
  /** Complete CRLs that delta CRLs name as their base (src/pki/crl.ts). */
  readonly crlBases: CrlBaseStore;
  readonly keyring: KeyringStore;
  readonly subjectKeys: SubjectKeyStore;
  readonly legalHold: LegalHoldStore;
  /** Transit named keys and their sealed versions (src/secrets/transit/). */
  readonly transitKeys: TransitKeyStore;
  /** The Vault-compatible API core (docs/secrets.md): secrets keyring, mounts, KV v2, ACL policies. */
  readonly secretsKeyring: SecretsKeyringStore;
  readonly mounts: MountStore;
  readonly kv: KvStore;
  readonly aclPolicies: AclPolicyStore;
  readonly appRoles: AppRoleStore;
  readonly certRoles: CertRoleStore;
  /** Leases of dynamic secrets and the database engine (docs/secrets.md#leases). */
  readonly leases: LeaseStore;
  readonly database: DatabaseStore;
  /** KV rotation policies, grace versions and secret change events (docs/secrets.md#rotation). */
  readonly rotation: RotationStore;
  /** Vault token roles, response wrapping and KV version 1 (docs/secrets.md). */
  readonly tokenRoles: TokenRoleStore;
  readonly wrapping: WrappingStore;
  readonly kv1: Kv1Store;
}

export type Transact = <T>(work: (stores: Stores) => Promise<T>) => Promise<T>;

export function bindStores(db: Kysely<Database>, dialect: StoreDatabase['dialect']): Stores {
  return {
    tenants: new SqlTenantStore(db),
    tokens: new SqlTokenStore(db),
    policies: new SqlPolicyStore(db, dialect),
    entities: new SqlEntityStore(db),
    audit: new SqlAuditStore(db, dialect),
    ca: new SqlCaStore(db),
    certificates: new SqlCertificateStore(db),
    registrations: new SqlRegistrationStore(db),
    joinTokens: new SqlJoinTokenStore(db),
    agents: new SqlAgentStore(db),
    pkiEvents: new SqlPkiEventStore(db),
    crlBases: new SqlCrlBaseStore(db),
    keyring: new SqlKeyringStore(db),
    subjectKeys: new SqlSubjectKeyStore(db),
    legalHold: new SqlLegalHoldStore(db),
    transitKeys: new SqlTransitKeyStore(db),
    secretsKeyring: new SqlSecretsKeyringStore(db, dialect),
    mounts: new SqlMountStore(db, dialect),
    kv: new SqlKvStore(db, dialect),
    aclPolicies: new SqlAclPolicyStore(db, dialect),
    appRoles: new SqlAppRoleStore(db),
    certRoles: new SqlCertRoleStore(db),
    leases: new SqlLeaseStore(db),
    database: new SqlDatabaseStore(db),
    rotation: new SqlRotationStore(db),
    tokenRoles: new SqlTokenRoleStore(db),
    wrapping: new SqlWrappingStore(db),
    kv1: new SqlKv1Store(db),
  };
}

const committers = new WeakMap<StoreDatabase, GroupCommitter<Stores>>();

/**
 * Runs `work` in one store transaction: everything it writes through the given stores commits
 * together or not at all. This is how a domain change and its audit event stay atomic.
 *
 * On SQLite, transactions are group-committed (src/store/group-commit.ts): concurrent works share
 * one COMMIT, each in its own savepoint, and each caller is answered once that COMMIT is durable.
 * Every transactor of one database shares its committer, so they batch together. PostgreSQL runs
 * one transaction per work: its pool commits in parallel and its WAL writer already flushes
 * concurrent commits together, so batching measured no faster there
 * (bench/README.md#group-commit-of-write-transactions). `options` configure the committer when
 * this call creates it (the runtime's is the first); PostgreSQL ignores them.
 */
export function transactor(database: StoreDatabase, options: GroupCommitOptions = {}): Transact {
  if (database.dialect === 'postgres') {
    return (work) => database.db.transaction().execute((trx) => work(bindStores(trx, database.dialect)));
  }
  let committer = committers.get(database);
  if (!committer) {
    committer = new GroupCommitter(database.db, (db) => bindStores(db, database.dialect), options);
    committers.set(database, committer);
  }
  const shared = committer;
  return (work) => shared.transact(work);
}
