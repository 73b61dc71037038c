import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedPolicies } from '../../src/authz/seed-policies.js';
import { runCli } from '../support/cli.js';
import { type TestServer, startTestServer } from '../support/server.js';

/** `rampart policy …` against a real server over HTTPS, and `policy test` offline. */

const SCHEMA = 'entity User in [Group];\nentity Group;\nentity Doc;\naction read appliesTo { principal: User, resource: Doc };\n';
const TESTS = `- name: engineers read
  principal: { type: User, id: alice }
  action: { type: Action, id: read }
  resource: { type: Doc, id: d1 }
  expect: allow
  reasons: [eng-reads]
- name: others do not
  principal: { type: User, id: bob }
  action: { type: Action, id: read }
  resource: { type: Doc, id: d1 }
  expect: deny
`;
const ENTITIES = [
  { uid: { type: 'User', id: 'alice' }, attrs: {}, parents: [{ type: 'Group', id: 'eng' }] },
  { uid: { type: 'User', id: 'bob' }, attrs: {}, parents: [] },
  { uid: { type: 'Group', id: 'eng' }, attrs: {}, parents: [] },
];

describe('rampart policy', () => {
  let s: TestServer;
  let dir: string;
  const conn = () => ['--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', s.adminToken];
  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  };

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    dir = mkdtempSync(path.join(tmpdir(), 'rampart-cli-policy-'));
    write('docs/main.cedar', '@id("eng-reads")\npermit (principal in Group::"eng", action == Action::"read", resource);\n');
    write('docs/schema.cedarschema', SCHEMA);
    write('docs/tests.yaml', TESTS);
    write('docs/entities.json', JSON.stringify(ENTITIES));
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tests a directory offline, and fails on a failing case with exit code 1', async () => {
    const ok = await runCli('policy', 'test', path.join(dir, 'docs'), '--store', 'docs');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('2 test case(s) passed');
    write('open/main.cedar', 'permit (principal, action, resource);\n');
    write('open/schema.cedarschema', SCHEMA);
    write('open/tests.yaml', TESTS);
    write('open/entities.json', JSON.stringify(ENTITIES));
    const failing = await runCli('policy', 'test', path.join(dir, 'open'), '--store', 'docs');
    expect(failing.code).toBe(1);
    expect(failing.stderr).toContain('others do not: expected deny, got allow');
    expect(failing.stderr).toContain('authz.policy_tests_failed');
  });

  it('pushes entities and a directory, lists, shows, diffs and rolls back', async () => {
    // Entities first: the first push's tests run against them.
    const entities = await runCli('policy', 'entities', 'put', path.join(dir, 'docs/entities.json'), '--store', 'docs', ...conn());
    expect(entities.code, entities.stderr).toBe(0);
    expect(entities.stdout).toMatch(/revision\s+1/);
    const read = await runCli('policy', 'entities', 'get', '--store', 'docs', ...conn());
    expect(JSON.parse(read.stdout)).toEqual({ revision: 1, entities: ENTITIES });
    const first = await runCli('policy', 'push', path.join(dir, 'docs'), '--store', 'docs', '-m', 'first', ...conn());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/version\s+1/);

    write('docs/main.cedar', '@id("eng-reads")\npermit (principal in Group::"eng", action == Action::"read", resource);\n\n@id("no-d2")\nforbid (principal, action, resource == Doc::"d2");\n');
    const second = await runCli('policy', 'push', path.join(dir, 'docs'), '--store', 'docs', '-m', 'second', ...conn());
    expect(second.code, second.stderr).toBe(0);

    const versions = await runCli('policy', 'versions', '--store', 'docs', '--format', 'json', ...conn());
    expect((JSON.parse(versions.stdout) as { items: { version: number; status: string }[] }).items.map((v) => [v.version, v.status])).toEqual([
      [2, 'active'],
      [1, 'superseded'],
    ]);
    const diff = await runCli('policy', 'diff', '1', '2', '--store', 'docs', ...conn());
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toContain('+forbid (principal, action, resource == Doc::"d2");');
    const show = await runCli('policy', 'show', '--store', 'docs', ...conn());
    expect(show.stdout).toMatch(/version\s+2/);
    expect(show.stdout).toContain('changes since version 1');

    const rollback = await runCli('policy', 'rollback', '1', '--store', 'docs', ...conn());
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout).toMatch(/version\s+3/);
    expect((await s.runtime.stores.policies.active('default', 'docs'))?.policies).toEqual((await s.runtime.stores.policies.get('default', 'docs', 1))?.policies);
    const stores = await runCli('policy', 'stores', ...conn());
    expect(stores.stdout).toMatch(/docs\s+3\s+3/);
  });

  it('prints every reason of a rejected push and exits 2', async () => {
    write('bad/main.cedar', 'permit (principal, action, resource)\nwhen { principal.x ==  };\n');
    const res = await runCli('policy', 'push', path.join(dir, 'bad'), '--store', 'docs', ...conn());
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/Version \d+ was stored as rejected/);
    expect(res.stderr).toContain('main.cedar:2:');
    expect(res.stderr).toContain('(authz.policy_parse_failed)');
  });

  it('refuses a rampart push that locks out policy management, and reseeds the rampart store', async () => {
    write('lock/rampart.cedar', 'permit (principal in Rampart::Role::"admin", action == Rampart::Action::"audit:read", resource);\n');
    const locked = await runCli('policy', 'push', path.join(dir, 'lock'), ...conn());
    expect(locked.code).toBe(2);
    expect(locked.stderr).toContain('(authz.lockout)');
    const offline = await runCli('policy', 'test', path.join(dir, 'lock'));
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('authz.lockout');

    const reseed = await runCli('policy', 'reseed', '--format', 'json', ...conn());
    expect(reseed.code, reseed.stderr).toBe(0);
    const active = await s.runtime.stores.policies.active('default', 'rampart');
    expect(active?.policies).toEqual(seedPolicies('default'));
  });
});
