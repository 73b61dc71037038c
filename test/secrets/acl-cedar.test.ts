import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CedarAuthorizer } from '../../src/authz/cedar-authorizer.js';
import { cedar } from '../../src/authz/cedar-wasm.js';
import { rampartSchema } from '../../src/authz/rampart-schema.js';
import { CedarWasmEvaluator } from '../../src/authz/cedar-wasm-evaluator.js';
import type { PolicyVersionRecord } from '../../src/authz/store.js';
import { aclPoliciesToCedar, pathCondition } from '../../src/secrets/acl/cedar.js';
import { type AclCapability, type AclPolicy, parseAclPolicy } from '../../src/secrets/acl/hcl.js';

/**
 * The ACL → Cedar translation (src/secrets/acl/cedar.ts) against a direct reading of Vault's
 * rules: a pattern is literal segments, `+` for exactly one non-empty segment, and an optional
 * trailing `*` for any suffix; a capability is granted when a matching rule lists it and no
 * matching rule lists `deny`. The reference below is a regular expression per pattern, written
 * independently of the translation; Cedar (cedar-wasm, through the real authorizer and its
 * entity attributes) must agree with it on random policies, paths and capabilities.
 */
function referenceMatch(pattern: string, path: string): boolean {
  const star = pattern.endsWith('*');
  const body = star ? pattern.slice(0, -1) : pattern;
  const source = body
    .split('/')
    .map((seg) => (seg === '+' ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}${star ? '.*' : ''}$`, 's').test(path);
}

function referenceAllows(policies: readonly { name: string; policy: AclPolicy }[], roles: readonly string[], path: string, cap: AclCapability): boolean {
  const rules = policies.filter((p) => roles.includes(p.name)).flatMap((p) => p.policy.rules);
  const matching = rules.filter((r) => referenceMatch(r.path, path));
  return matching.some((r) => r.capabilities.includes(cap)) && !matching.some((r) => r.capabilities.includes('deny'));
}

const TENANT = 'acme';
const GRANTS: readonly AclCapability[] = ['create', 'read', 'update', 'delete', 'list', 'patch', 'sudo'];

function authorizerFor(cedarText: string): CedarAuthorizer {
  const record: PolicyVersionRecord = {
    tenant: TENANT,
    store: 'rampart',
    version: 1,
    hash: String(cedarText.length) + cedarText.slice(-40),
    policies: { 'vault-acl.cedar': cedarText },
    schema: null,
    status: 'active',
    author: 'test',
    message: '',
    createdAt: '2026-01-01T00:00:00.000Z',
  };
  return new CedarAuthorizer({ policies: { active: async () => record }, evaluator: evaluator });
}
const evaluator = new CedarWasmEvaluator();

async function cedarAllows(authorizer: CedarAuthorizer, roles: readonly string[], path: string, cap: AclCapability): Promise<boolean> {
  const d = await authorizer.authorize({
    tenant: TENANT,
    principal: { type: 'Rampart::Token', id: 'tok', tenant: TENANT, roles, authMethod: 'token', displayName: '' },
    action: `vault:${cap}`,
    resource: { type: 'Rampart::VaultPath', id: path },
    context: { tenant: TENANT, source_ip: '127.0.0.1', mtls: false, request_time: 0 },
  });
  expect(d.errors).toEqual([]);
  return d.decision === 'allow';
}

const segment = fc.constantFrom('a', 'b', 'ab', 'data', 'x.y');
const patternArb = fc
  .tuple(fc.array(fc.oneof(segment, fc.constant('+')), { minLength: 1, maxLength: 4 }), fc.constantFrom('', '*', '/*', '/'))
  .map(([segs, end]) => `${segs.join('/')}${end}`)
  // `+*` is refused by the parser (a `+` is a whole segment); its test is below.
  .filter((p) => !p.includes('+*'));
const pathArb = fc
  .tuple(fc.array(fc.oneof(segment, fc.constant('')), { minLength: 1, maxLength: 5 }), fc.boolean())
  .map(([segs, slash]) => `${segs.join('/')}${slash ? '/' : ''}`);
const ruleArb = fc.record({ path: patternArb, capabilities: fc.uniqueArray(fc.constantFrom<AclCapability>(...GRANTS, 'deny'), { minLength: 1, maxLength: 4 }) });
const policiesArb = fc.array(fc.record({ name: fc.constantFrom('p0', 'p1', 'p2'), rules: fc.array(ruleArb, { minLength: 1, maxLength: 4 }) }), { minLength: 1, maxLength: 3 });

describe('Vault ACL translated into Cedar', () => {
  it('decides exactly as a direct reading of the rules', async () => {
    await fc.assert(
      fc.asyncProperty(policiesArb, fc.subarray(['p0', 'p1', 'p2']), fc.array(fc.tuple(pathArb, fc.constantFrom(...GRANTS)), { minLength: 1, maxLength: 8 }), async (raw, roles, probes) => {
        const named = [...new Map(raw.map((p) => [p.name, p])).values()].map((p) => {
          const hcl = p.rules.map((r) => `path "${r.path}" {\n  capabilities = [${r.capabilities.map((c) => `"${c}"`).join(', ')}]\n}`).join('\n');
          return { name: p.name, policy: parseAclPolicy(hcl) };
        });
        const authorizer = authorizerFor(aclPoliciesToCedar(TENANT, named)!);
        for (const [path, cap] of probes) {
          expect({ path, cap, allowed: await cedarAllows(authorizer, roles, path, cap) }).toEqual({ path, cap, allowed: referenceAllows(named, roles, path, cap) });
        }
      }),
      { numRuns: 120 },
    );
  }, 120_000);

  it('lets deny win over a broader grant', async () => {
    const policy = parseAclPolicy('path "secret/*" { capabilities = ["read"] }\npath "secret/+/admin" { capabilities = ["deny"] }');
    const authorizer = authorizerFor(aclPoliciesToCedar(TENANT, [{ name: 'p0', policy }])!);
    expect(await cedarAllows(authorizer, ['p0'], 'secret/app/config', 'read')).toBe(true);
    expect(await cedarAllows(authorizer, ['p0'], 'secret/app/admin', 'read')).toBe(false);
    expect(await cedarAllows(authorizer, ['p0'], 'secret/app/admin/x', 'read')).toBe(true);
    expect(await cedarAllows(authorizer, ['p1'], 'secret/app/config', 'read')).toBe(false);
  });

  it('never grants across tenants', async () => {
    const authorizer = authorizerFor(aclPoliciesToCedar(TENANT, [{ name: 'p0', policy: parseAclPolicy('path "*" { capabilities = ["read"] }') }])!);
    const d = await authorizer.authorize({
      tenant: TENANT,
      principal: { type: 'Rampart::Token', id: 'tok', tenant: 'other', roles: ['p0'], authMethod: 'token', displayName: '' },
      action: 'vault:read',
      resource: { type: 'Rampart::VaultPath', id: 'anything' },
      context: { tenant: TENANT, source_ip: '127.0.0.1', mtls: false, request_time: 0 },
    });
    expect(d.decision).toBe('deny');
  });

  it("validates strictly against Rampart's schema, so the rampart store stays pushable", () => {
    const policy = parseAclPolicy('path "a/+/b/*" { capabilities = ["read", "deny"] }\npath "x" { capabilities = ["sudo"] }\npath "y/*" { capabilities = ["list"] }');
    const text = aclPoliciesToCedar(TENANT, [{ name: 'p0', policy }])!;
    const answer = cedar.validate({ schema: rampartSchema(), policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
    expect(answer).toMatchObject({ type: 'success', validationErrors: [] });
  });

  it('compiles the three pattern shapes', () => {
    expect(pathCondition('secret/data/app')).toBe('resource.path == "secret/data/app"');
    expect(pathCondition('secret/data/*')).toBe('resource.path like "secret/data/*"');
    expect(pathCondition('secret/+')).toBe('resource has seg0 && resource.seg0 == "secret" && resource has seg1 && resource.seg1 != "" && !(resource has tail2)');
  });
});

describe('ACL policy parser', () => {
  it('reads path blocks, comments and trailing commas', () => {
    const p = parseAclPolicy('# team policy\npath "a/*" {\n  capabilities = ["read", "list",]\n}\n/* block */ path "b" { capabilities = [] } // none');
    expect(p.rules).toEqual([
      { path: 'a/*', capabilities: ['read', 'list'] },
      { path: 'b', capabilities: [] },
    ]);
  });

  it.each([
    ['path "a" { capabilities = ["read"] ', 'line 1, column 35: expected "}", found end of policy'],
    ['path "a" {\n  allowed_parameters = {}\n}', 'line 2, column 3: unsupported attribute "allowed_parameters"'],
    ['path "a*b" { capabilities = ["read"] }', 'line 1, column 8: "*" is only allowed at the end of a path'],
    ['path "a/b+" { capabilities = ["read"] }', 'line 1, column 6: "+" must be a whole path segment'],
    ['path "a" { capabilities = ["read"] }\npath "b" { capabilities = ["root"] }', 'line 2, column 28: unknown capability "root"'],
    ['key "a" {}', 'line 1, column 1: unsupported block "key"'],
    ['path "a\n" {}', 'line 1, column 6: unterminated string'],
    ['path "a" { capabilities = ["read"] capabilities = ["list"] }', 'line 1, column 36: capabilities given twice'],
  ])('refuses %j with its position', (text, message) => {
    expect(() => parseAclPolicy(text)).toThrow(`policy ${message}`);
  });
});
