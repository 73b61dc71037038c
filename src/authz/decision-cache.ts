/**
 * Decisions kept per tenant, least recently used evicted first, bounded in total.
 *
 * Partitioned by tenant so that {@link DecisionCache.invalidate} drops exactly one tenant's
 * entries, synchronously: a policy activation, rollback or entity change calls it before it is
 * acknowledged, and no later lookup can then find a decision made under the old state. Keys carry
 * the policy version and entity revision as well, so even an entry written late by a request
 * that began before the change can never be served for the new state.
 */
export class DecisionCache<T> {
  readonly #max: number;
  readonly #tenants = new Map<string, Map<string, T>>();
  #size = 0;

  constructor(maxEntries: number) {
    this.#max = Math.max(1, maxEntries);
  }

  get size(): number {
    return this.#size;
  }

  get(tenant: string, key: string): T | undefined {
    const entries = this.#tenants.get(tenant);
    const hit = entries?.get(key);
    if (hit === undefined) return undefined;
    entries!.delete(key);
    entries!.set(key, hit);
    return hit;
  }

  set(tenant: string, key: string, value: T): void {
    let entries = this.#tenants.get(tenant);
    if (!entries) {
      entries = new Map();
      this.#tenants.set(tenant, entries);
    }
    if (entries.delete(key)) this.#size--;
    if (this.#size >= this.#max) this.#evictOne(entries);
    entries.set(key, value);
    this.#size++;
  }

  invalidate(tenant: string): void {
    const entries = this.#tenants.get(tenant);
    if (!entries) return;
    this.#size -= entries.size;
    this.#tenants.delete(tenant);
  }

  /** The inserting tenant pays for its own growth first; otherwise the least recently created tenant. */
  #evictOne(preferred: Map<string, T>): void {
    const victim = preferred.size > 0 ? preferred : [...this.#tenants.values()].find((m) => m.size > 0);
    if (!victim) return;
    victim.delete(victim.keys().next().value!);
    this.#size--;
  }
}
