/**
 * PKI change notifications for `GET /v1/pki/events`: revocations (so that agents re-issue and
 * relying parties drop a revoked peer within seconds instead of waiting for the next CRL) and
 * trust-bundle changes (so that agents rewrite `bundle.pem` after a CA rotation).
 *
 * In-process fan-out: each replica notifies the subscribers connected to it of the changes it
 * made. With several PostgreSQL replicas a subscriber sees only its replica's revocations, and
 * must keep checking the CRL or OCSP (which read the shared store) for the others.
 */
export type PkiEvent =
  | { readonly type: 'revoked'; readonly serial_numbers: readonly string[]; readonly spiffe_id: string | null; readonly revoked_at: string }
  | { readonly type: 'bundle'; readonly changed_at: string };

export type PkiEventListener = (event: PkiEvent) => void;

export class PkiEventHub {
  readonly #byTenant = new Map<string, Set<PkiEventListener>>();
  readonly #bundleWatchers = new Set<() => void>();

  /** Calls `watcher` after every trust-bundle change, within this process (the TLS listener's CA list); returns the unsubscribe. */
  watchBundle(watcher: () => void): () => void {
    this.#bundleWatchers.add(watcher);
    return () => this.#bundleWatchers.delete(watcher);
  }

  /** Calls `listener` with every later event of `tenant` and every bundle change; returns the unsubscribe. */
  subscribe(tenant: string, listener: PkiEventListener): () => void {
    let set = this.#byTenant.get(tenant);
    if (!set) this.#byTenant.set(tenant, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#byTenant.delete(tenant);
    };
  }

  /** Announces a committed revocation; call after the transaction that revoked committed. */
  revoked(tenant: string, result: { readonly serialNumbers: readonly string[]; readonly revokedAt: string }, target: { readonly spiffeId: string } | { readonly serialNumber: string }): void {
    const spiffeId = 'spiffeId' in target ? target.spiffeId : null;
    this.#emit(this.#byTenant.get(tenant), { type: 'revoked', serial_numbers: [...result.serialNumbers], spiffe_id: spiffeId, revoked_at: result.revokedAt });
  }

  /** Announces that the trust bundle changed (a CA was added or retired); every tenant hears it. */
  bundleChanged(at: Date): void {
    for (const watcher of this.#bundleWatchers) watcher();
    for (const set of this.#byTenant.values()) this.#emit(set, { type: 'bundle', changed_at: at.toISOString() });
  }

  /** How many subscribers are connected, for tests and metrics. */
  get subscribers(): number {
    let n = 0;
    for (const set of this.#byTenant.values()) n += set.size;
    return n;
  }

  #emit(set: Set<PkiEventListener> | undefined, event: PkiEvent): void {
    // A listener that throws must not keep the event from the others.
    for (const listener of set ?? []) {
      try {
        listener(event);
      } catch {
        continue;
      }
    }
  }
}
