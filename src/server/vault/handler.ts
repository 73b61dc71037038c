import type { EntityRef } from '../../audit/event.js';
import type { Principal } from '../../identity/principal.js';
import type { TokenRecord } from '../../identity/store.js';
import type { EngineRequest, EngineRequestHead, EngineResponse, Capability } from '../../secrets/engine.js';

/**
 * What serves one Vault path prefix: a mounted secrets engine (wrapped), or one of the built-in
 * trees (`sys/`, `auth/token/`). Built-in handlers see the caller's token and may ask for more
 * than ACL capabilities: `extraChecks` are further Cedar decisions (e.g. `secrets:barrier` for
 * sealing, an operator action).
 */
export interface VaultPlan {
  readonly capabilities: readonly Capability[];
  readonly writes: boolean;
  readonly extraChecks?: readonly { readonly action: string; readonly resource: EntityRef }[];
}

export interface VaultRequestHead extends Omit<EngineRequestHead, 'mount'> {
  /** The whole path after `/v1/` (the ACL resource); `path` is the part below the handler's prefix. */
  readonly fullPath: string;
  readonly principal: Principal;
  readonly token: TokenRecord | undefined;
  /** The client address, for decisions a handler asks for itself (`sys/capabilities-self`). */
  readonly sourceIp: string;
  /** Seconds of `X-Vault-Wrap-TTL`, when the answer is to be wrapped (src/server/vault/wrapping.ts). */
  readonly wrapTtl?: number | undefined;
}

export type VaultRequest = VaultRequestHead &
  Omit<EngineRequest, 'mount' | keyof EngineRequestHead> & {
    /** A further Cedar decision once the body is known (e.g. `token:grant-role`); throws when denied. */
    readonly authorize: (action: string, resource: EntityRef) => Promise<void>;
  };

export interface VaultResponse extends EngineResponse {
  /** Vault's `auth` block (token creation and login). */
  readonly auth?: Readonly<Record<string, unknown>>;
  /** Runs after the transaction committed (e.g. dropping cached decisions after a policy change). */
  readonly afterCommit?: () => void;
  /** Also put the fields of `data` at the top level of the envelope (Vault's sys/ endpoints). */
  readonly flatten?: boolean;
  /** Replaces the whole envelope (sys/seal-status and sys/init answer bare objects, as Vault does). */
  readonly raw?: Readonly<Record<string, unknown>>;
}

export interface VaultHandler {
  /** Engine type shown as `mount_type` in the envelope; '' for built-in trees. */
  readonly mountType: string;
  /** False for the built-in trees that work while sealed (sys/unseal, sys/seal-status, auth/token). */
  readonly needsUnsealed: boolean;
  plan(req: VaultRequestHead): VaultPlan | Promise<VaultPlan>;
  /**
   * Decisions that need the body (`token:grant-role` per requested policy), made before the
   * transaction opens: on SQLite a decision that reads policies inside it would wait on itself.
   */
  precheck?(req: VaultRequest): Promise<void>;
  handle(req: VaultRequest): Promise<VaultResponse>;
}
