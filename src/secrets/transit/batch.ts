import { TransitError } from '../../core/errors.js';

/** Vault caps nothing here; Rampart bounds one request's work so a batch cannot monopolise a core. */
export const MAX_BATCH_ITEMS = 1000;

export type BatchOutcome<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: string };

/**
 * Runs `work` for every item, in order. A TransitError (bad input, an item that does not
 * decrypt) becomes that item's error and the others still run, as Vault's `batch_results`
 * report them; any other failure (sealed barrier, store down) fails the whole batch, closed.
 */
export async function runBatch<I, R>(items: readonly I[], work: (item: I) => Promise<R>): Promise<BatchOutcome<R>[]> {
  if (items.length === 0) throw new TransitError('transit.invalid_request', 'batch_input is empty');
  if (items.length > MAX_BATCH_ITEMS) throw new TransitError('transit.invalid_request', `batch_input has more than ${MAX_BATCH_ITEMS} items`);
  const outcomes: BatchOutcome<R>[] = [];
  for (const item of items) {
    try {
      outcomes.push({ ok: true, value: await work(item) });
    } catch (err) {
      if (!(err instanceof TransitError)) throw err;
      outcomes.push({ ok: false, error: err.message });
    }
  }
  return outcomes;
}
