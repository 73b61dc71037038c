import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CedarWasmEvaluator } from '../../src/authz/cedar-wasm-evaluator.js';
import { entityProblems } from '../../src/authz/entity-json.js';
import { PolicyTestsInvalid, isTestFile, parsePolicyTests, runPolicyTests } from '../../src/authz/policy-tests.js';

/** The policy test runner (docs/authz-policies.md#policy-tests) and the entity checks it shares. */

const evaluator = new CedarWasmEvaluator();
const POLICIES = {
  'docs.cedar': '@id("eng-reads")\npermit (principal in Group::"eng", action == Action::"read", resource);\n\n@id("no-secret")\nforbid (principal, action, resource == Doc::"secret");\n',
};
const STORE_ENTITIES = [
  { uid: { type: 'User', id: 'alice' }, attrs: {}, parents: [{ type: 'Group', id: 'eng' }] },
  { uid: { type: 'Group', id: 'eng' }, attrs: {}, parents: [] },
];

describe('policy tests', () => {
  it('passes cases that get their decision and determining policies, with store and case entities', async () => {
    const cases = parsePolicyTests({
      'tests.yaml': `
- name: engineers read
  principal: { type: User, id: alice }
  action: { type: Action, id: read }
  resource: { type: Doc, id: d1 }
  expect: allow
  reasons: [eng-reads]
- name: a forbid wins
  principal: { type: User, id: alice }
  action: { type: Action, id: read }
  resource: { type: Doc, id: secret }
  expect: deny
  reasons: [no-secret]
- name: case entities replace the store's
  principal: { type: User, id: alice }
  action: { type: Action, id: read }
  resource: { type: Doc, id: d1 }
  entities: [{ uid: { type: User, id: alice }, attrs: {}, parents: [] }]
  expect: deny
`,
    });
    expect(cases).toHaveLength(3);
    const prepared = await evaluator.prepare({ policies: POLICIES });
    expect(runPolicyTests(evaluator, prepared, cases, STORE_ENTITIES)).toEqual({ passed: 3, failures: [] });
  });

  it('reports a wrong decision, wrong determining policies, and a request that cannot be evaluated', async () => {
    const cases = parsePolicyTests({
      'a.test.yaml': `
- { name: wrong decision, principal: { type: User, id: bob }, action: { type: Action, id: read }, resource: { type: Doc, id: d1 }, expect: allow }
- { name: wrong reasons, principal: { type: User, id: alice }, action: { type: Action, id: read }, resource: { type: Doc, id: d1 }, expect: allow, reasons: [other] }
- { name: bad entities, principal: { type: User, id: alice }, action: { type: Action, id: read }, resource: { type: Doc, id: d1 }, entities: [{ uid: 3 }], expect: allow }
`,
    });
    const prepared = await evaluator.prepare({ policies: POLICIES });
    const run = runPolicyTests(evaluator, prepared, cases, STORE_ENTITIES);
    expect(run.passed).toBe(0);
    expect(run.failures[0]).toBe('a.test.yaml: wrong decision: expected allow, got deny');
    expect(run.failures[1]).toBe('a.test.yaml: wrong reasons: expected determining policies [other], got [eng-reads]');
    expect(run.failures[2]).toMatch(/^a\.test\.yaml: bad entities: cannot be evaluated: /);
  });

  it('names the file and case of every malformed test', () => {
    const parse = (text: string) => {
      try {
        parsePolicyTests({ 'tests.yaml': text });
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(PolicyTestsInvalid);
        return (err as PolicyTestsInvalid).problems;
      }
    };
    expect(parse('name: not a list')).toEqual(['tests.yaml: must be a list of test cases']);
    expect(parse('- [unclosed')[0]).toMatch(/^tests\.yaml: not YAML: /);
    expect(parse('- name: x\n  principal: { type: User, id: a }\n  action: { type: Action, id: r }\n  resource: { type: D, id: d }\n  expect: maybe\n')).toEqual([
      'tests.yaml: case 1: ("x") expect must be allow or deny',
    ]);
    expect(parse('- name: x\n  principal: User::"a"\n  action: { type: Action, id: r }\n  resource: { type: D, id: d }\n  expect: deny\n')).toEqual([
      'tests.yaml: case 1: ("x") principal must be {"type": "<entity type>", "id": "<id>"}',
    ]);
    expect(parse('- name: x\n  unknown: 1\n')).toEqual(['tests.yaml: case 1: unknown field "unknown"']);
    expect(parse('- expect: allow\n')).toEqual(['tests.yaml: case 1: name must be a non-empty string']);
    expect(parse('')).toEqual([]);
  });

  it('recognizes test files by name', () => {
    expect(['tests.yaml', 'a.test.yaml', 'dir/b.test.yaml', 'dir/tests.yaml'].every(isTestFile)).toBe(true);
    expect(['test.yaml', 'tests.yml', 'a.cedar', 'mytests.yaml'].some(isTestFile)).toBe(false);
  });
});

describe('entity checks', () => {
  it('finds a cycle in the parents of any hierarchy that has one, and none in a DAG', () => {
    // Parents only point to lower indexes: a DAG. One back edge from lower to higher makes a cycle.
    const dag = fc.integer({ min: 2, max: 30 }).chain((n) =>
      fc.tuple(
        fc.array(fc.array(fc.nat(), { maxLength: 3 }), { minLength: n, maxLength: n }),
        fc.integer({ min: 0, max: n - 1 }),
        fc.integer({ min: 0, max: n - 1 }),
      ),
    );
    fc.assert(
      fc.property(dag, ([parents, x, y]) => {
        const entities = parents.map((ps, i) => ({
          uid: { type: 'G', id: String(i) },
          attrs: {},
          parents: i === 0 ? [] : [...new Set(ps.map((p) => p % i))].map((p) => ({ type: 'G', id: String(p) })),
        }));
        if (entityProblems(entities, null).length !== 0) return false;
        const [lo, hi] = x < y ? [x, y] : [y, x];
        if (lo === hi) return true;
        // hi reaches lo only if there is a path; make one directly, then close the cycle lo -> hi.
        entities[hi]!.parents.push({ type: 'G', id: String(lo) });
        entities[lo]!.parents.push({ type: 'G', id: String(hi) });
        return entityProblems(entities, null).some((p) => p.startsWith('parents form a cycle'));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a self-parent, duplicates, malformed entities, and types the schema does not declare', () => {
    expect(entityProblems([{ uid: { type: 'G', id: 'a' }, attrs: {}, parents: [{ type: 'G', id: 'a' }] }], null)[0]).toBe('parents form a cycle: G::"a" -> G::"a"');
    const e = { uid: { type: 'G', id: 'a' }, attrs: {}, parents: [] };
    expect(entityProblems([e, e], null)).toEqual(['entity 2: G::"a" appears twice']);
    expect(entityProblems([{ uid: { type: 'G' }, attrs: {}, parents: [] }], null)[0]).toMatch(/^entity 1: uid must be/);
    expect(entityProblems([{ ...e, extra: 1 }], null)).toEqual(['entity 1: unknown field "extra"']);
    expect(entityProblems([e], 'entity User;')[0]).toMatch(/G/);
    expect(entityProblems([{ uid: { type: 'User', id: 'u' }, attrs: {}, parents: [] }], 'entity User;')).toEqual([]);
  });
});
