import { isRampartError } from '../../src/core/errors.js';

/** The code of the RampartError `fn` throws; undefined when it returns; anything else as text. */
export function errorCodeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isRampartError(err) ? err.code : String(err);
  }
}
