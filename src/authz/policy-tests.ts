/**
 * Policy tests: request cases with the decision each must get and, optionally, the policies that
 * must determine it. A store's tests are kept with each version and run on every push and
 * rollback before the version may become active; `rampart policy test DIR` runs the same code
 * offline. The YAML format is documented in docs/authz-policies.md#policy-tests.
 */
import { parse as parseYaml } from 'yaml';
import type { CedarValue, EntityJson, EntityUid, PolicyEvaluator, PreparedPolicySet } from './evaluator.js';
import { isRecord, parseEntityUid } from './entity-json.js';

/** Test cases across all of a version's test files. */
export const MAX_TEST_CASES = 1000;

export interface PolicyTestCase {
  readonly file: string;
  readonly name: string;
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: { readonly [key: string]: CedarValue };
  readonly entities: readonly EntityJson[];
  readonly expect: 'allow' | 'deny';
  /** The determining policy ids, as a set; unchecked when absent. */
  readonly reasons: readonly string[] | undefined;
}

/** A test file is named `tests.yaml` or `<name>.test.yaml`, in any directory of the policy set. */
export function isTestFile(name: string): boolean {
  return name === 'tests.yaml' || name.endsWith('/tests.yaml') || name.endsWith('.test.yaml');
}

/** Parses every test file; throws a {@link PolicyTestsInvalid} listing each problem. */
export function parsePolicyTests(files: Readonly<Record<string, string>>): PolicyTestCase[] {
  const cases: PolicyTestCase[] = [];
  const problems: string[] = [];
  for (const file of Object.keys(files).sort()) {
    let doc: unknown;
    try {
      doc = parseYaml(files[file]!, { maxAliasCount: 100 });
    } catch (err) {
      problems.push(`${file}: not YAML: ${(err as Error).message}`);
      continue;
    }
    if (doc === null || doc === undefined) continue;
    if (!Array.isArray(doc)) {
      problems.push(`${file}: must be a list of test cases`);
      continue;
    }
    doc.forEach((item: unknown, i) => {
      const at = `${file}: case ${i + 1}`;
      try {
        cases.push(parseCase(file, item));
      } catch (err) {
        problems.push(`${at}: ${(err as Error).message}`);
      }
    });
  }
  if (problems.length > 0) throw new PolicyTestsInvalid(problems);
  if (cases.length > MAX_TEST_CASES) throw new PolicyTestsInvalid([`${cases.length} test cases; at most ${MAX_TEST_CASES}`]);
  return cases;
}

/** The test files are malformed; `problems` says where. */
export class PolicyTestsInvalid extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'PolicyTestsInvalid';
  }
}

function parseCase(file: string, item: unknown): PolicyTestCase {
  if (!isRecord(item)) throw new Error('must be a mapping');
  const known = new Set(['name', 'principal', 'action', 'resource', 'context', 'entities', 'expect', 'reasons']);
  const unknown = Object.keys(item).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
  const name = item.name;
  if (typeof name !== 'string' || name === '') throw new Error('name must be a non-empty string');
  const named = (message: string) => new Error(`(${JSON.stringify(name)}) ${message}`);
  if (item.expect !== 'allow' && item.expect !== 'deny') throw named('expect must be allow or deny');
  const context = item.context ?? {};
  if (!isRecord(context)) throw named('context must be a mapping');
  const entities = item.entities ?? [];
  if (!Array.isArray(entities)) throw named('entities must be a list of Cedar entities');
  const reasons = item.reasons;
  if (reasons !== undefined && !(Array.isArray(reasons) && reasons.every((r) => typeof r === 'string'))) {
    throw named('reasons must be a list of policy ids');
  }
  try {
    return {
      file,
      name,
      principal: parseEntityUid(item.principal, 'principal'),
      action: parseEntityUid(item.action, 'action'),
      resource: parseEntityUid(item.resource, 'resource'),
      context: context as { [key: string]: CedarValue },
      entities: entities as EntityJson[],
      expect: item.expect,
      reasons: reasons as string[] | undefined,
    };
  } catch (err) {
    throw named((err as Error).message);
  }
}

export interface PolicyTestRun {
  readonly passed: number;
  /** One line per failing case: `<file>: <name>: <what happened>`. */
  readonly failures: readonly string[];
}

/**
 * Runs the cases against a prepared policy set. Entities are the store's, with a case's own
 * entities replacing any of the same uid. A case whose request cannot be evaluated fails.
 */
export function runPolicyTests(
  evaluator: PolicyEvaluator,
  prepared: PreparedPolicySet,
  cases: readonly PolicyTestCase[],
  storeEntities: readonly EntityJson[],
): PolicyTestRun {
  const failures: string[] = [];
  for (const c of cases) {
    const label = `${c.file}: ${c.name}`;
    const entities = new Map(storeEntities.map((e) => [uidKey(e.uid), e]));
    for (const e of c.entities) entities.set(uidKey(e.uid), e);
    let result;
    try {
      result = evaluator.isAuthorized(prepared, {
        principal: c.principal,
        action: c.action,
        resource: c.resource,
        context: c.context,
        entities: [...entities.values()],
      });
    } catch (err) {
      failures.push(`${label}: cannot be evaluated: ${(err as Error).message}`);
      continue;
    }
    if (result.decision !== c.expect) {
      const why = result.reasons.length > 0 ? ` (determined by ${result.reasons.join(', ')})` : '';
      failures.push(`${label}: expected ${c.expect}, got ${result.decision}${why}`);
      continue;
    }
    if (c.reasons !== undefined) {
      const got = [...result.reasons].sort();
      const want = [...new Set(c.reasons)].sort();
      if (got.length !== want.length || got.some((id, i) => id !== want[i])) {
        failures.push(`${label}: expected determining policies [${want.join(', ')}], got [${got.join(', ')}]`);
      }
    }
  }
  return { passed: cases.length - failures.length, failures };
}

function uidKey(uid: EntityUid): string {
  return JSON.stringify([uid.type, uid.id]);
}
