import type { Clock } from '../core/clock.js';
import type { Sealer } from '../core/sealer.js';
import { SecretsError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import type { Stores, Transact } from '../store/stores.js';

/**
 * Secrets engines behind the Vault-compatible API (`/v1/<mount path>/…`).
 *
 * How to add an engine (transit, database, …):
 * 1. Implement {@link EngineFactory} in your own folder (`src/secrets/<type>/engine.ts`): `type`
 *    is the name `sys/mounts` accepts (`{"type":"transit"}`); `create(mount)` returns the
 *    {@link SecretsEngine} that serves one mount. Keep it free of HTTP: it sees an
 *    {@link EngineRequest} and returns an {@link EngineResponse}.
 * 2. Add one line to `BUILTIN_ENGINES` in `src/secrets/engines.ts`. The Vault adapter
 *    (`src/server/vault/`) then routes `/v1/<path>/*` of every mount of that type to it; nothing
 *    in `src/server/` changes per engine.
 * 3. Declare in `plan()` which Vault capabilities each request needs and whether it writes. The
 *    adapter checks the capabilities with Cedar (`Rampart::Action::"vault:<capability>"` on
 *    `Rampart::VaultPath::"<mount>/<path>"`, which is where `sys/policy` HCL rules land), so an
 *    engine never makes an access decision of its own. A request that writes runs in one store
 *    transaction with its audit event: `req.stores` is then bound to that transaction.
 * 4. Refuse bad input by throwing `SecretsError` with a code from `src/core/errors.ts` (add
 *    yours there and to `docs/errors.md`). The adapter answers Vault's `{"errors":["<message>"]}`
 *    with the code's status and records the code in the audit event. Put only non-secret facts
 *    in the message.
 * 5. Secret material goes through `req.sealer.encrypt(tenant, recordId, bytes)` (the barrier:
 *    AES-256-GCM, record id as associated data); store ports of your own go into `Stores`
 *    (`src/store/stores.ts`, one line each).
 * 6. Test it with node-vault against a listening server, like `test/interop/vault-kv.test.ts`:
 *    `const s = await startTestServer({ listen: true })`, then
 *    `vaultClient(s)` from `test/support/vault.ts` and `vault.mount({ mount_point, type })`,
 *    `vault.write(path, body)`, `vault.read(path)`, `vault.request({ path, method, json })`;
 *    `refusal(promise)` gives the status and body of a refused call, `mint(client, args)` creates
 *    a token without switching the client to it (node-vault does that by default). Lists go as
 *    `GET ?list=true` (Node's HTTP parser refuses the LIST method; see docs/secrets.md).
 */

/** Vault's HTTP verbs, `LIST` included (`GET ?list=true` arrives here as `LIST`). */
/** Vault's answer to a method a path does not take (405 `unsupported operation`). */
export function unsupportedOperation(): never {
  throw new SecretsError('secrets.unsupported_operation', 'unsupported operation');
}

export type VaultMethod = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'LIST' | 'PATCH';

/** Vault ACL capabilities (`deny` is a policy rule, never something a request needs). */
export type Capability = 'create' | 'read' | 'update' | 'delete' | 'list' | 'patch' | 'sudo';
export const CAPABILITIES: readonly Capability[] = ['create', 'read', 'update', 'delete', 'list', 'patch', 'sudo'];

/** The engine types `sys/mounts` accepts; each must have a factory in `BUILTIN_ENGINES`. */
export type EngineType = 'kv' | 'transit' | 'database';

/** A mounted engine instance, as `sys/mounts` lists it. */
export interface Mount {
  readonly tenant: string;
  /** Without leading or trailing slash: `secret`, `team/kv`. */
  readonly path: string;
  readonly type: EngineType;
  /** Vault's mount accessor (`kv_1a2b3c4d`). */
  readonly accessor: string;
  readonly description: string;
  /** Engine options, e.g. `{ version: '2' }` for KV. */
  readonly options: Readonly<Record<string, string>>;
  /** Lease TTLs in seconds; 0 means the system default. */
  readonly defaultLeaseTtl: number;
  readonly maxLeaseTtl: number;
  readonly createdAt: string;
}

/** What an engine needs to know before it runs: enough to plan, nothing from the body. */
export interface EngineRequestHead {
  readonly method: VaultMethod;
  /** The path below the mount, without leading slash (`data/app/db`); may be ''. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly tenant: string;
  readonly mount: Mount;
  /** Not bound to a transaction: for existence checks while planning. */
  readonly stores: Stores;
}

export interface EngineRequest extends EngineRequestHead {
  /** The parsed JSON body; `{}` when there was none. Untrusted: validate every field. */
  readonly body: Readonly<Record<string, unknown>>;
  /** The request's media type (`application/merge-patch+json` for KV PATCH). */
  readonly contentType: string | undefined;
  readonly principal: Principal;
  readonly requestId: string;
  readonly clock: Clock;
  readonly sealer: Sealer;
  /** Bound to the request's transaction when the plan said `writes`. */
  readonly stores: Stores;
}

/** What a request needs, decided before it runs. */
export interface EnginePlan {
  /** Every capability the caller must hold on the request's path (usually one). */
  readonly capabilities: readonly Capability[];
  /** True when the request changes state: it then runs in one transaction with its audit event. */
  readonly writes: boolean;
}

/** Vault's response envelope, minus `request_id` (the adapter adds it). */
export interface EngineResponse {
  /**
   * Defaults to 200 when there is data, 204 otherwise. A status ≥ 400 is for reads only (KV's
   * 404 with the metadata of a deleted version); a write that fails must throw, so that its
   * transaction rolls back and its audit event records the refusal.
   */
  readonly status?: number;
  readonly data?: Readonly<Record<string, unknown>> | null;
  readonly leaseId?: string;
  /** Seconds. */
  readonly leaseDuration?: number;
  readonly renewable?: boolean;
  readonly warnings?: readonly string[];
  readonly wrapInfo?: Readonly<Record<string, unknown>> | null;
  /** Non-secret facts for the audit event (a version number, a key name). */
  readonly audit?: Readonly<Record<string, string | number | boolean | null | readonly string[]>>;
}

export interface SecretsEngine {
  plan(req: EngineRequestHead): EnginePlan | Promise<EnginePlan>;
  /**
   * The part of a write that calls an external system (creating a user on a target database),
   * run once the request is authorized and before its transaction opens: store transactions are
   * group-committed, and one waiting on a slow remote call would hold every other request's
   * commit (src/store/group-commit.ts). `req.stores` are not bound to a transaction; `transact`
   * is for bookkeeping that must be durable before the external call (a provisional lease), so it
   * shares a group commit instead of paying its own. The same engine instance then runs `handle`,
   * which records the outcome with the audit event.
   */
  precheck?(req: EngineRequest, transact: Transact): Promise<void>;
  /** Throws `SecretsError` to refuse; the adapter turns it into Vault's error shape. */
  handle(req: EngineRequest): Promise<EngineResponse>;
}

export interface EngineFactory {
  readonly type: EngineType;
  /** Checks and normalizes `options` of `sys/mounts`; throws `secrets.invalid_request`. */
  normalizeOptions?(options: Readonly<Record<string, string>>): Record<string, string>;
  create(mount: Mount): SecretsEngine;
  /** Called inside the unmount transaction: delete every record of the mount. */
  purge?(stores: Stores, mount: Mount): Promise<void>;
}

/** Engine factories by type. One per process, filled from `BUILTIN_ENGINES`. */
export class EngineRegistry {
  readonly #factories = new Map<string, EngineFactory>();

  constructor(factories: readonly EngineFactory[]) {
    for (const f of factories) {
      if (this.#factories.has(f.type)) throw new Error(`two secrets engines claim the type ${f.type}`);
      this.#factories.set(f.type, f);
    }
  }

  types(): string[] {
    return [...this.#factories.keys()].sort();
  }

  /** Throws `secrets.invalid_request` for an unknown type (a caller's typo, not a server fault). */
  factory(type: string): EngineFactory {
    const f = this.#factories.get(type);
    if (!f) throw new SecretsError('secrets.invalid_request', `unknown secrets engine type "${type}" (known: ${this.types().join(', ')})`);
    return f;
  }
}
