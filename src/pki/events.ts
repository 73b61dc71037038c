/**
 * PKI change notifications for `GET /v1/pki/events`: revocations (so that agents re-issue and
 * relying parties drop a revoked peer within seconds instead of waiting for the next CRL) and
 * trust-bundle changes (so that agents rewrite `bundle.pem` after a CA rotation).
 *
 * The hub fans events out to the subscribers connected to this process. What it fans out comes
 * from the store, not from the request that made the change: revocations are appended to a change
 * log inside the revoking transaction and read back in commit order by every replica
 * (replica-sync.ts), so each replica's subscribers hear every revocation exactly once, whichever
 * replica made it.
 */
export type RevokedEvent = { readonly type: 'revoked'; readonly serial_numbers: readonly string[]; readonly spiffe_id: string | null; readonly revoked_at: string };
export type PkiEvent = RevokedEvent | { readonly type: 'bundle'; readonly changed_at: string };

/** How long the change log keeps a revocation: far longer than any replica may lag behind it. */
export const PKI_EVENT_RETENTION_MS = 86_400_000;

/** A revocation as the change log holds it. */
export interface PkiEventRecord {
  /** Position in the log; sequence order is commit order. */
  readonly sequence: number;
  readonly tenant: string;
  readonly event: RevokedEvent;
}

/** A certificate a change-log entry revoked, and the key id of the CA that issued it. */
export interface LoggedRevocation {
  readonly issuer: string;
  readonly serialNumber: string;
}

/** Storage of the PKI change log, shared by every replica. */
export interface PkiEventStore {
  /**
   * Appends `event`, which newly revoked `revoked`, with the next sequence; call in the
   * transaction that revoked, so that the entry commits with the revocation or not at all.
   * Entries older than {@link PKI_EVENT_RETENTION_MS} are dropped on the way.
   */
  append(tenant: string, event: RevokedEvent, revoked: readonly LoggedRevocation[], at: string): Promise<number>;
  /** The last sequence taken (0 before the first append). */
  head(): Promise<number>;
  /** Up to `limit` entries after `sequence`, in sequence order. */
  after(sequence: number, limit: number): Promise<PkiEventRecord[]>;
}

/**
 * `sequence` is the revocation's change-log position (its event-stream id, so a client can resume
 * after it); bundle changes have none.
 */
export type PkiEventListener = (event: PkiEvent, sequence?: number) => void;

export class PkiEventHub {
  readonly #byTenant = new Map<string, Set<PkiEventListener>>();
  readonly #bundleWatchers = new Set<() => void>();

  /**
   * Calls `watcher` after every trust-bundle change this process loads, its own or another
   * replica's (the TLS listener's CA list); returns the unsubscribe.
   */
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

  /** Delivers a committed revocation, read from the change log at `sequence`, to the tenant's subscribers. */
  revoked(tenant: string, event: RevokedEvent, sequence: number): void {
    this.#emit(this.#byTenant.get(tenant), event, sequence);
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

  #emit(set: Set<PkiEventListener> | undefined, event: PkiEvent, sequence?: number): void {
    // A listener that throws must not keep the event from the others.
    for (const listener of set ?? []) {
      try {
        listener(event, sequence);
      } catch {
        continue;
      }
    }
  }
}
