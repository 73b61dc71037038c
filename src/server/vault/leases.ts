import { SecretsError } from '../../core/errors.js';
import type { Runtime } from '../../runtime.js';
import type { LeaseId, LeaseRecord } from '../../secrets/leases/lease.js';
import type { RenewResult } from '../../secrets/leases/lease-manager.js';
import { optionalBool, optionalDurationSeconds, optionalString } from '../../secrets/fields.js';
import { childKey } from '../../secrets/list-keys.js';
import type { VaultHandler, VaultPlan, VaultRequest, VaultRequestHead, VaultResponse } from './handler.js';
import { unsupportedOperation } from '../../secrets/engine.js';

/**
 * `sys/leases/*` (https://developer.hashicorp.com/vault/api-docs/system/leases): lookup, LIST
 * lookup, renew, revoke, revoke-prefix; and the older `sys/renew`, `sys/revoke` and
 * `sys/revoke-prefix` paths, which Vault keeps as aliases (and node-vault still calls). Every
 * operation is scoped to the addressed tenant: another tenant's lease is simply not there.
 *
 * `revoke-prefix` makes every matching lease due now and revokes them in the background through
 * the expiry worker (bounded batches, retries with backoff), so a prefix holding 100,000 leases is
 * one statement here rather than 100,000 database calls inside one request.
 */
type Operation = 'lookup' | 'renew' | 'revoke' | 'revoke-prefix';
const OPERATIONS = new Set<string>(['lookup', 'renew', 'revoke', 'revoke-prefix']);
/** Keys a LIST returns at most; Vault's LIST has no paging here either, so a cap keeps it bounded. */
const MAX_LIST = 10_000;
const PAGE = 1_000;

function split(path: string): { op: Operation; rest: string } {
  const slash = path.indexOf('/');
  const op = slash === -1 ? path : path.slice(0, slash);
  if (!OPERATIONS.has(op)) throw new SecretsError('secrets.not_found', `unsupported path sys/leases/${path}`);
  return { op: op as Operation, rest: slash === -1 ? '' : path.slice(slash + 1) };
}

/** The lease id from the body's `lease_id`, else from the path (`sys/leases/renew/<id>`). */
function leaseIdOf(req: VaultRequest, rest: string): string {
  const id = optionalString(req.body, 'lease_id', 2048) ?? rest;
  if (!id) throw new SecretsError('secrets.invalid_request', 'lease_id: expected a lease id');
  return id;
}

/** `sys/leases/…` when `prefix` is '', or one of the older aliases (`sys/renew/…` → `renew`). */
export function leaseHandler(runtime: Runtime, alias?: Operation): VaultHandler {
  const { manager, expiry } = runtime.leases;
  const route = (path: string) => (alias ? { op: alias, rest: path } : split(path));
  /**
   * What `precheck` did in the external system, by request id (server-generated), until `handle`
   * records it in the request's transaction; an entry whose request never got there expires.
   */
  const external = new Map<string, { renewed: RenewResult } | { revoked: LeaseRecord | undefined }>();
  const keep = (requestId: string, outcome: { renewed: RenewResult } | { revoked: LeaseRecord | undefined }) => {
    external.set(requestId, outcome);
    setTimeout(() => external.delete(requestId), 60_000).unref();
  };
  const take = (requestId: string) => {
    const outcome = external.get(requestId);
    external.delete(requestId);
    return outcome;
  };
  return {
    mountType: 'system',
    needsUnsealed: true,

    plan(req: VaultRequestHead): VaultPlan {
      const { op } = route(req.path);
      const m = req.method;
      switch (op) {
        case 'lookup':
          if (m === 'LIST') return { capabilities: ['list', 'sudo'], writes: false };
          return m === 'PUT' || m === 'POST' ? { capabilities: ['update'], writes: false } : unsupportedOperation();
        case 'renew':
        case 'revoke':
          return m === 'PUT' || m === 'POST' ? { capabilities: ['update'], writes: true } : unsupportedOperation();
        case 'revoke-prefix':
          return m === 'PUT' || m === 'POST' ? { capabilities: ['update', 'sudo'], writes: true } : unsupportedOperation();
      }
    },

    /**
     * Renewal and synchronous revocation call the secret's external system (`ALTER ROLE`, `DROP
     * ROLE` on a target database): that happens here, before the store transaction opens, so a
     * remote call never holds the store's writer (src/store/group-commit.ts); `handle` records it.
     */
    async precheck(req: VaultRequest): Promise<void> {
      const { op, rest } = route(req.path);
      if (op === 'renew') {
        keep(req.requestId, { renewed: await manager.renewExternally(req.stores, req.tenant, leaseIdOf(req, rest), optionalDurationSeconds(req.body, 'increment')) });
      } else if (op === 'revoke' && optionalBool(req.body, 'sync') !== false) {
        keep(req.requestId, { revoked: await manager.revokeExternally(req.stores, req.tenant, leaseIdOf(req, rest)) });
      }
    },

    async handle(req: VaultRequest): Promise<VaultResponse> {
      const { op, rest } = route(req.path);
      const store = req.stores.leases;
      const done = take(req.requestId);
      switch (op) {
        case 'lookup': {
          if (req.method === 'LIST') return listLeases(req, rest);
          const id = leaseIdOf(req, '');
          return { data: { ...(await manager.lookup(req.stores, req.tenant, id)) }, audit: { lease_id: id } };
        }
        case 'renew': {
          const id = leaseIdOf(req, rest);
          const increment = optionalDurationSeconds(req.body, 'increment');
          let renewed: RenewResult;
          if (done && 'renewed' in done) {
            renewed = done.renewed;
            await manager.recordRenewal(req.stores, renewed);
          } else {
            renewed = await manager.renew(req.stores, req.tenant, id, increment);
          }
          const { lease, warning } = renewed;
          const duration = Math.max(0, Math.round((Date.parse(lease.expiresAt) - req.clock.now().getTime()) / 1000));
          return {
            status: 200,
            data: null,
            leaseId: lease.leaseId,
            leaseDuration: duration,
            renewable: lease.renewable,
            ...(warning ? { warnings: [warning] } : {}),
            audit: { lease_id: lease.leaseId, expire_time: lease.expiresAt },
          };
        }
        case 'revoke': {
          const id = leaseIdOf(req, rest);
          // `sync: false` queues the revocation (Vault answers 202): the expiry worker does it now.
          if (optionalBool(req.body, 'sync') === false) {
            const queued = await store.expire(req.tenant, id as LeaseId, req.clock.now().toISOString());
            return { status: 202, afterCommit: () => expiry.notify(), audit: { lease_id: id, queued } };
          }
          let revoked: boolean;
          if (done && 'revoked' in done) {
            if (done.revoked) await manager.forgetRevoked(req.stores, done.revoked);
            revoked = done.revoked !== undefined;
          } else {
            revoked = await manager.revoke(req.stores, req.tenant, id);
          }
          return { status: 204, audit: { lease_id: id, revoked } };
        }
        case 'revoke-prefix': {
          if (rest === '') throw new SecretsError('secrets.invalid_request', 'revoke-prefix needs a prefix');
          const count = await store.expirePrefix(req.tenant, rest, req.clock.now().toISOString());
          return { status: 204, afterCommit: () => expiry.notify(), audit: { prefix: rest, leases: count } };
        }
      }
    },
  };
}

/** Vault lists one level below the prefix: lease ids' next segment, folders with a trailing `/`. */
async function listLeases(req: VaultRequest, rest: string): Promise<VaultResponse> {
  const prefix = rest === '' || rest.endsWith('/') ? rest : `${rest}/`;
  const keys = new Set<string>();
  let after: string | undefined;
  for (;;) {
    const page = await req.stores.leases.listByPrefix(req.tenant, prefix, { after, limit: PAGE });
    for (const id of page) {
      keys.add(childKey(id, prefix));
      if (keys.size >= MAX_LIST) break;
    }
    if (page.length < PAGE || keys.size >= MAX_LIST) break;
    after = page.at(-1);
  }
  if (keys.size === 0) throw new SecretsError('secrets.not_found', 'no leases under this prefix');
  return { data: { keys: [...keys].sort() }, audit: { count: keys.size } };
}
