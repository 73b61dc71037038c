import { setFlagsFromString } from 'node:v8';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

/*
 * Node 20's V8 (11.3) aborts the whole process ("Fatal error … unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation) when TurboFan has inlined a JS→Wasm call returning a
 * reference type and the calling frame is lazily deoptimized while the Wasm call runs — which the
 * cedar-wasm glue does routinely (it calls back into JSON.parse/JSON.stringify, and Wasm memory
 * growth detaches ArrayBuffers). Seen in 3 of 3 runs of a plain Node script looping over the
 * Cedar corpus (preparseSchema + statefulIsAuthorized), after 2,000–5,000 tests; 0 of 3 with this
 * flag (not seen inside vitest, whose call sites are shaped differently). The flag is read when a
 * function is optimized, so setting it before the first hot loop is enough; it costs one wrapper
 * call per JS→Wasm call.
 */
setFlagsFromString('--no-turbo-inline-js-wasm-calls');

/** cedar-wasm, loaded with the V8 setting above: import it from here, never directly. */
export { cedar };
