/**
 * Cedar conformance: every PolicyEvaluator against the Cedar integration tests,
 * github.com/cedar-policy/cedar-integration-tests at f161e9f858a05134aeb74d5e13c91d85bc8c320d,
 * vendored unchanged in test/vectors/cedar/ (see its README). The hand-written `tests/` and all
 * 7,809 generated tests of `corpus-tests.tar.gz` run as upstream's harness runs them
 * (cedar-policy/cedar `cedar-testing/src/integration_testing.rs`): for every test, `validate`
 * must agree with `shouldValidate`; for every request, the decision, the set of determining
 * policies and the set of erroring policies must equal Cedar's. On top of that, the deny kind
 * and the effects the evaluator reports must be consistent with the reasons (an allow is
 * determined by permits, a deny by forbids or by nothing).
 *
 * To hold another engine to this suite, add it to `evaluators`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CedarWasmEvaluator } from '../../src/authz/cedar-wasm-evaluator.js';
import type { EntityJson, EntityUid, EvaluationRequest, PolicyEvaluator } from '../../src/authz/evaluator.js';

const evaluators: PolicyEvaluator[] = [new CedarWasmEvaluator()];

const VECTORS = fileURLToPath(new URL('../vectors/cedar/', import.meta.url));
const CORPUS_TESTS = 7_809;
const CORPUS_REQUESTS = 62_472;
const CHUNK = 100;

/** The upstream test format (UPSTREAM-README.md, `JsonTest` / `JsonRequest` upstream). */
interface CedarTest {
  readonly policies: string;
  readonly entities: string;
  readonly schema: string;
  readonly shouldValidate: boolean;
  readonly requests: readonly CedarTestRequest[];
}

interface CedarTestRequest {
  readonly description: string;
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: EvaluationRequest['context'];
  /** Upstream defaults this to true when absent (the hand-written tests omit it). */
  readonly validateRequest?: boolean;
  readonly decision: 'allow' | 'deny';
  readonly reason: readonly string[];
  readonly errors: readonly string[];
}

/** Reads a file named by a test, by its path relative to the upstream repository root. */
type Files = (path: string) => string;

/**
 * JSON.parse, except that integers outside ±2^53 become bigint: the corpus has Cedar Longs such
 * as 9223372036854775807, which a JavaScript number would round (and Cedar then reject).
 */
const BIG = '\u0000bigint:';
function parseJsonExact<T>(text: string): T {
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (token) =>
    token.startsWith('"') || /[.eE]/.test(token) || Number.isSafeInteger(Number(token)) ? token : `"\\u0000bigint:${token}"`,
  );
  return JSON.parse(marked, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(BIG) ? BigInt(value.slice(BIG.length)) : value,
  ) as T;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
};
const show = (ids: readonly string[]): string => `[${[...new Set(ids)].sort().join(', ')}]`;

interface Tally {
  tests: number;
  requests: number;
}

/** Runs one upstream test; returns one line per disagreement (none when the evaluator conforms). */
async function runTest(evaluator: PolicyEvaluator, name: string, files: Files, tally: Tally): Promise<string[]> {
  const test = parseJsonExact<CedarTest>(files(name));
  const policies = files(test.policies);
  const schema = files(test.schema);
  const entities = parseJsonExact<EntityJson[]>(files(test.entities));
  const out: string[] = [];
  tally.tests++;

  const validation = evaluator.validate({ policies }, schema);
  if (validation.valid !== test.shouldValidate) {
    out.push(`${name}: shouldValidate ${test.shouldValidate}, validate() said ${validation.valid} ${validation.errors.join(' | ')}`);
  }

  let prepared;
  try {
    prepared = await evaluator.prepare({ policies, schema });
  } catch (err) {
    return [...out, `${name}: prepare threw ${(err as Error).message}`];
  }
  for (const r of test.requests) {
    tally.requests++;
    const where = `${name} "${r.description}"`;
    let got;
    try {
      got = evaluator.isAuthorized(prepared, {
        principal: r.principal,
        action: r.action,
        resource: r.resource,
        context: r.context,
        entities,
        validateRequest: r.validateRequest ?? true,
      });
    } catch (err) {
      out.push(`${where}: threw ${(err as Error).message}`);
      continue;
    }
    const errored = got.errors.map((e) => e.policyId);
    if (got.decision !== r.decision) out.push(`${where}: decision ${got.decision}, expected ${r.decision}`);
    if (!sameSet(got.reasons, r.reason)) out.push(`${where}: reasons ${show(got.reasons)}, expected ${show(r.reason)}`);
    if (!sameSet(errored, r.errors)) out.push(`${where}: errors ${show(errored)}, expected ${show(r.errors)}`);
    // Cedar semantics: an allow is determined by satisfied permits, a deny by satisfied forbids.
    const wanted = got.decision === 'allow' ? 'permit' : 'forbid';
    const wrongEffect = got.reasons.filter((id) => prepared.effects.get(id) !== wanted);
    if (wrongEffect.length > 0) out.push(`${where}: ${got.decision} determined by non-${wanted} ${show(wrongEffect)}`);
    if (got.decision === 'deny' && got.denyKind !== (got.reasons.length > 0 ? 'forbid' : 'no_permit')) {
      out.push(`${where}: denyKind ${got.denyKind} with reasons ${show(got.reasons)}`);
    }
  }
  return out;
}

function report(mismatches: readonly string[]): string {
  const shown = mismatches.slice(0, 50).join('\n');
  return mismatches.length > 50 ? `${shown}\n… and ${mismatches.length - 50} more` : shown;
}

/** The hand-written tests: `tests/<group>/<n>.json`, naming files under test/vectors/cedar/. */
const handWritten = readdirSync(join(VECTORS, 'tests'))
  .flatMap((group) =>
    readdirSync(join(VECTORS, 'tests', group))
      .filter((f) => f.endsWith('.json'))
      .map((f) => `tests/${group}/${f}`),
  )
  .sort();
const vectorFiles: Files = (path) => readFileSync(join(VECTORS, path), 'utf8');

/**
 * The corpus, read in memory straight from the archive (gzip, then the ustar layout of POSIX
 * pax/tar: 512-byte headers, name at 0, size in octal at 124, type at 156, prefix at 345), so the
 * suite needs neither a `tar` binary nor a temporary directory.
 */
function readTarGz(path: string): Map<string, Buffer> {
  const tar = gunzipSync(readFileSync(path));
  const files = new Map<string, Buffer>();
  const field = (at: number, len: number) => tar.subarray(at, at + len).toString('utf8').replace(/\0.*$/s, '');
  let longName: string | undefined;
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = field(at, 100);
    if (name === '') break;
    const size = parseInt(field(at + 124, 12).trim() || '0', 8);
    const type = field(at + 156, 1);
    const body = tar.subarray(at + 512, at + 512 + size);
    const prefix = field(at + 345, 155);
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0' || type === '') {
      files.set(longName ?? (prefix ? `${prefix}/${name}` : name), body);
      longName = undefined;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

const corpus = readTarGz(join(VECTORS, 'corpus-tests.tar.gz'));
const corpusFiles: Files = (path) => {
  const body = corpus.get(path);
  if (!body) throw new Error(`${path} is not in corpus-tests.tar.gz`);
  return body.toString('utf8');
};
const corpusTests = [...corpus.keys()]
  .filter((name) => name.endsWith('.json') && !name.endsWith('.entities.json'))
  .sort();
const chunks: string[][] = [];
for (let i = 0; i < corpusTests.length; i += CHUNK) chunks.push(corpusTests.slice(i, i + CHUNK));

for (const evaluator of evaluators) {
  describe(`Cedar conformance: ${evaluator.name}`, () => {
    describe('hand-written tests (tests/)', () => {
      it.each(handWritten)('%s', async (name) => {
        const mismatches = await runTest(evaluator, name, vectorFiles, { tests: 0, requests: 0 });
        expect(mismatches, report(mismatches)).toEqual([]);
      });
    });

    describe(`corpus-tests.tar.gz (${corpusTests.length} tests, ${chunks.length} chunks of ${CHUNK})`, () => {
      const tally: Tally = { tests: 0, requests: 0 };
      it.each(chunks.map((names, i) => ({ names, label: `${i * CHUNK}–${i * CHUNK + names.length - 1}` })))(
        'tests $label',
        async ({ names }) => {
          const mismatches: string[] = [];
          for (const name of names) mismatches.push(...(await runTest(evaluator, name, corpusFiles, tally)));
          expect(mismatches, report(mismatches)).toEqual([]);
        },
        60_000,
      );

      it(`ran all ${CORPUS_TESTS} tests and ${CORPUS_REQUESTS} requests`, () => {
        expect(corpusTests).toHaveLength(CORPUS_TESTS);
        expect(tally).toEqual({ tests: CORPUS_TESTS, requests: CORPUS_REQUESTS });
      });
    });
  });
}
