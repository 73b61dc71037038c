import { type Kysely, type Selectable } from 'kysely';
import type { KvKey } from '../secrets/kv/store.js';
import type {
  GraceVersionRecord,
  RotationFailure,
  RotationFailureExpectation,
  RotationPolicyRecord,
  RotationStore,
  SecretEventRecord,
  StoredSecretEvent,
} from '../secrets/rotation/store.js';
import type { Database, SecretsEventsTable, SecretsGraceVersionsTable, SecretsRotationPoliciesTable } from './schema.js';

const HEAD_ROW = 'head';

/**
 * Rotation policies, grace versions and secret change events (migration 0022_secrets_rotation).
 * `appendEvent` takes its id by incrementing the head row, whose row lock (PostgreSQL) or write
 * lock (SQLite) is held until the transaction ends: ids are handed out in commit order, so a
 * reader that saw N never later finds an event below N appear (as the PKI change log,
 * pki-event-store.ts). The price: transactions that append an event serialize on that row from
 * their append to their commit, so the append comes late in each of them.
 */
export class SqlRotationStore implements RotationStore {
  constructor(private readonly db: Kysely<Database>) {}

  async policy(k: KvKey): Promise<RotationPolicyRecord | undefined> {
    const r = await this.db
      .selectFrom('secrets_rotation_policies')
      .selectAll()
      .where('tenant', '=', k.tenant)
      .where('mount', '=', k.mount)
      .where('path', '=', k.path)
      .executeTakeFirst();
    return r && toPolicy(r);
  }

  async putPolicy(p: RotationPolicyRecord): Promise<void> {
    const values = {
      mount_path: p.mountPath,
      period_seconds: p.periodSeconds,
      grace_seconds: p.graceSeconds,
      generator: p.generator,
      next_rotation_at: p.nextRotationAt,
      last_rotated_at: p.lastRotatedAt,
      state: p.state,
      attempts: p.attempts,
      last_error: p.lastError,
    };
    await this.db
      .insertInto('secrets_rotation_policies')
      .values({ tenant: p.tenant, mount: p.mount, path: p.path, ...values })
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'path']).doUpdateSet(values))
      .execute();
  }

  async recordFailure(k: KvKey, expected: RotationFailureExpectation, failure: RotationFailure): Promise<boolean> {
    const r = await this.db
      .updateTable('secrets_rotation_policies')
      .set({ attempts: failure.attempts, next_rotation_at: failure.nextRotationAt, last_error: failure.lastError })
      .where('tenant', '=', k.tenant)
      .where('mount', '=', k.mount)
      .where('path', '=', k.path)
      .where('state', '=', 'scheduled')
      .where('next_rotation_at', '=', expected.nextRotationAt)
      .where('attempts', '=', expected.attempts)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async deletePolicy(k: KvKey): Promise<void> {
    await this.db.deleteFrom('secrets_rotation_policies').where('tenant', '=', k.tenant).where('mount', '=', k.mount).where('path', '=', k.path).execute();
  }

  async duePolicies(now: string, limit: number): Promise<RotationPolicyRecord[]> {
    const rows = await this.db
      .selectFrom('secrets_rotation_policies')
      .selectAll()
      .where('state', '=', 'scheduled')
      .where('next_rotation_at', '<=', now)
      .orderBy('next_rotation_at')
      .limit(limit)
      .execute();
    return rows.map(toPolicy);
  }

  async putGrace(g: GraceVersionRecord): Promise<void> {
    await this.db
      .insertInto('secrets_grace_versions')
      .values({ tenant: g.tenant, mount: g.mount, path: g.path, version: g.version, mount_path: g.mountPath, readable_until: g.readableUntil })
      .onConflict((oc) => oc.columns(['tenant', 'mount', 'path', 'version']).doUpdateSet({ readable_until: g.readableUntil }))
      .execute();
  }

  async graceVersions(k: KvKey, now: string): Promise<GraceVersionRecord[]> {
    const rows = await this.db
      .selectFrom('secrets_grace_versions')
      .selectAll()
      .where('tenant', '=', k.tenant)
      .where('mount', '=', k.mount)
      .where('path', '=', k.path)
      .where('readable_until', '>', now)
      .orderBy('version')
      .execute();
    return rows.map(toGrace);
  }

  async endedGrace(now: string, limit: number): Promise<GraceVersionRecord[]> {
    const rows = await this.db.selectFrom('secrets_grace_versions').selectAll().where('readable_until', '<=', now).orderBy('readable_until').limit(limit).execute();
    return rows.map(toGrace);
  }

  async deleteGrace(k: KvKey, version: number): Promise<void> {
    await this.db
      .deleteFrom('secrets_grace_versions')
      .where('tenant', '=', k.tenant)
      .where('mount', '=', k.mount)
      .where('path', '=', k.path)
      .where('version', '=', version)
      .execute();
  }

  async appendEvent(e: SecretEventRecord): Promise<number> {
    const head = await this.db
      .insertInto('secrets_event_head')
      .values({ id: HEAD_ROW, sequence: 1, updated_at: e.occurredAt })
      .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ sequence: eb('secrets_event_head.sequence', '+', 1), updated_at: e.occurredAt })))
      .returning('sequence')
      .executeTakeFirstOrThrow();
    const id = Number(head.sequence);
    await this.db
      .insertInto('secrets_events')
      .values({
        id,
        tenant: e.tenant,
        kind: e.kind,
        mount_path: e.mountPath,
        path: e.path,
        version: e.version,
        occurred_at: e.occurredAt,
        previous_readable_until: e.previousReadableUntil,
      })
      .execute();
    return id;
  }

  async eventsAfter(afterId: number, limit: number): Promise<StoredSecretEvent[]> {
    const rows = await this.db.selectFrom('secrets_events').selectAll().where('id', '>', afterId).orderBy('id').limit(limit).execute();
    return rows.map(toEvent);
  }

  async tenantEventsAfter(tenant: string, afterId: number, limit: number, upTo?: number): Promise<StoredSecretEvent[]> {
    const rows = await this.db
      .selectFrom('secrets_events')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '>', afterId)
      .$if(upTo !== undefined, (qb) => qb.where('id', '<=', upTo!))
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toEvent);
  }

  async lastEventId(): Promise<number> {
    const row = await this.db.selectFrom('secrets_event_head').select('sequence').where('id', '=', HEAD_ROW).executeTakeFirst();
    return row === undefined ? 0 : Number(row.sequence);
  }

  async firstEventId(): Promise<number | undefined> {
    const r = await this.db.selectFrom('secrets_events').select((eb) => eb.fn.min('id').as('id')).executeTakeFirst();
    return r?.id == null ? undefined : Number(r.id);
  }

  async pruneEvents(before: string, limit: number): Promise<number> {
    const ids = this.db.selectFrom('secrets_events').select('id').where('occurred_at', '<', before).orderBy('id').limit(limit);
    const result = await this.db.deleteFrom('secrets_events').where('id', 'in', ids).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteSecret(k: KvKey): Promise<void> {
    await this.deletePolicy(k);
    await this.db.deleteFrom('secrets_grace_versions').where('tenant', '=', k.tenant).where('mount', '=', k.mount).where('path', '=', k.path).execute();
  }

  async purgeMount(tenant: string, mount: string): Promise<void> {
    for (const table of ['secrets_rotation_policies', 'secrets_grace_versions'] as const) {
      await this.db.deleteFrom(table).where('tenant', '=', tenant).where('mount', '=', mount).execute();
    }
  }
}

function toPolicy(r: Selectable<SecretsRotationPoliciesTable>): RotationPolicyRecord {
  return {
    tenant: r.tenant,
    mount: r.mount,
    path: r.path,
    mountPath: r.mount_path,
    periodSeconds: Number(r.period_seconds),
    graceSeconds: Number(r.grace_seconds),
    generator: r.generator,
    nextRotationAt: r.next_rotation_at,
    lastRotatedAt: r.last_rotated_at,
    state: r.state === 'due' ? 'due' : 'scheduled',
    attempts: Number(r.attempts),
    lastError: r.last_error,
  };
}

function toGrace(r: Selectable<SecretsGraceVersionsTable>): GraceVersionRecord {
  return { tenant: r.tenant, mount: r.mount, path: r.path, mountPath: r.mount_path, version: Number(r.version), readableUntil: r.readable_until };
}

function toEvent(r: Selectable<SecretsEventsTable>): StoredSecretEvent {
  return {
    id: Number(r.id),
    tenant: r.tenant,
    kind: r.kind as StoredSecretEvent['kind'],
    mountPath: r.mount_path,
    path: r.path,
    version: r.version === null ? null : Number(r.version),
    occurredAt: r.occurred_at,
    previousReadableUntil: r.previous_readable_until,
  };
}
