import type { LegalHoldStore } from '../audit/retention-store.js';
import type { AuditStore } from '../audit/store.js';
import type { SubjectKeyStore } from '../audit/subjects.js';
import type { PolicyStore } from '../authz/store.js';
import type { TenantStore, TokenStore } from '../identity/store.js';
import type { CaStore, CertificateStore } from '../pki/store.js';
import type { KeyringStore } from '../secrets/store.js';
import { SqlAuditStore } from './audit-store.js';
import { SqlCaStore } from './ca-store.js';
import { SqlCertificateStore } from './certificate-store.js';
import type { StoreDatabase } from './database.js';
import { SqlKeyringStore } from './keyring-store.js';
import { SqlLegalHoldStore } from './legal-hold-store.js';
import { SqlPolicyStore } from './policy-store.js';
import { SqlSubjectKeyStore } from './subject-key-store.js';
import type { Database } from './schema.js';
import { SqlTenantStore } from './tenant-store.js';
import { SqlTokenStore } from './token-store.js';
import type { Kysely } from 'kysely';

/** Every capability's storage port, bound to one connection or one transaction. */
export interface Stores {
  readonly tenants: TenantStore;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;
  readonly audit: AuditStore;
  readonly ca: CaStore;
  readonly certificates: CertificateStore;
  readonly keyring: KeyringStore;
  readonly subjectKeys: SubjectKeyStore;
  readonly legalHold: LegalHoldStore;
}

export type Transact = <T>(work: (stores: Stores) => Promise<T>) => Promise<T>;

export function bindStores(db: Kysely<Database>, dialect: StoreDatabase['dialect']): Stores {
  return {
    tenants: new SqlTenantStore(db),
    tokens: new SqlTokenStore(db),
    policies: new SqlPolicyStore(db),
    audit: new SqlAuditStore(db, dialect),
    ca: new SqlCaStore(db),
    certificates: new SqlCertificateStore(db),
    keyring: new SqlKeyringStore(db),
    subjectKeys: new SqlSubjectKeyStore(db),
    legalHold: new SqlLegalHoldStore(db),
  };
}

/**
 * Runs `work` in one store transaction: everything it writes through the given stores commits
 * together or not at all. This is how a domain change and its audit event stay atomic.
 */
export function transactor(database: StoreDatabase): Transact {
  return (work) => database.db.transaction().execute((trx) => work(bindStores(trx, database.dialect)));
}
