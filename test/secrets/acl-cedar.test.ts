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
 * The ACL → Cedar translation (src/secrets/acl/cedar.ts) against a port of Vault's own decision
 * (vault/acl.go as of Vault 1.15: `NewACL` merges the rules of each pattern; `AllowOperation`
 * looks up an exact rule, for `list` also without the trailing `/`, then for `list` the glob and
 * `+` rules on the path without the trailing `/`, then on the path itself; among those,
 * `CheckAllowedFromNonExactPaths` takes the longest plain glob and every matching `+` pattern and
 * keeps the greatest by its `less`). A
 * pattern matches as a regular expression: literal segments, `+` for exactly one segment (an
 * empty one too), and an optional trailing `*` for any suffix. Cedar (cedar-wasm, through the real authorizer and its entity
 * attributes) must agree with it on random policies, paths and capabilities.
 */
function referenceMatch(pattern: string, path: string): boolean {
  const star = pattern.endsWith('*');
  const body = star ? pattern.slice(0, -1) : pattern;
  const source = body
    .split('/')
    .map((seg) => (seg === '+' ? '[^/]*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}${star ? '.*' : ''}$`, 's').test(path);
}

const isExact = (pattern: string) => !pattern.endsWith('*') && !pattern.split('/').includes('+');

/** Vault's `wcPathDescr` and `less`: true when `a` has the lower priority. */
interface Descr {
  readonly firstWCOrGlob: number;
  readonly wildcards: number;
  readonly isPrefix: boolean;
  readonly wcPath: string;
  readonly pattern: string;
}
function descrOf(pattern: string): Descr {
  const isPrefix = pattern.endsWith('*');
  const wcPath = isPrefix ? pattern.slice(0, -1) : pattern;
  const segmentWildcard = pattern.split('/').includes('+');
  return {
    firstWCOrGlob: segmentWildcard ? pattern.indexOf('+') : wcPath.length,
    wildcards: wcPath.split('/').filter((s) => s === '+').length,
    isPrefix,
    wcPath,
    pattern,
  };
}
function less(a: Descr, b: Descr): boolean {
  if (a.firstWCOrGlob !== b.firstWCOrGlob) return a.firstWCOrGlob < b.firstWCOrGlob;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix;
  if (a.wildcards !== b.wildcards) return a.wildcards > b.wildcards;
  if (a.wcPath.length !== b.wcPath.length) return a.wcPath.length < b.wcPath.length;
  return a.wcPath < b.wcPath;
}

function referenceAllows(policies: readonly { name: string; policy: AclPolicy }[], roles: readonly string[], path: string, cap: AclCapability): boolean {
  const merged = new Map<string, Set<AclCapability>>();
  for (const p of policies.filter((q) => roles.includes(q.name))) {
    for (const r of p.policy.rules) {
      const caps = merged.get(r.path) ?? new Set<AclCapability>();
      for (const c of r.capabilities) caps.add(c);
      merged.set(r.path, caps);
    }
  }
  const patterns = [...merged.keys()];
  // CheckAllowedFromNonExactPaths: the longest plain glob and every matching `+` pattern, the greatest by `less`.
  const nonExact = (p: string): string | undefined => {
    const plainGlobs = patterns.filter((k) => k.endsWith('*') && !k.split('/').includes('+') && p.startsWith(k.slice(0, -1)));
    const longest = plainGlobs.sort((a, b) => b.length - a.length)[0];
    const candidates = [
      ...(longest === undefined ? [] : [descrOf(longest)]),
      ...patterns.filter((k) => k.split('/').includes('+') && referenceMatch(k, p)).map(descrOf),
    ];
    return candidates.reduce<Descr | undefined>((best, d) => (best === undefined || less(best, d) ? d : best), undefined)?.pattern;
  };
  // AllowOperation: exact, then for LIST exact without the trailing slash, then for LIST the
  // non-exact patterns on the path without it, then the non-exact patterns on the path.
  const listed = cap === 'list' && path.endsWith('/');
  let decider = patterns.find((k) => isExact(k) && k === path);
  if (decider === undefined && listed) decider = patterns.find((k) => isExact(k) && k === path.slice(0, -1));
  if (decider === undefined && listed) decider = nonExact(path.slice(0, -1));
  if (decider === undefined) decider = nonExact(path);
  if (decider === undefined) return false;
  const caps = merged.get(decider)!;
  return caps.has(cap) && !caps.has('deny');
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

// Few, prefix-related segments, so that patterns overlap and precedence decides often.
const segment = fc.constantFrom('a', 'b', 'ab', 'x.y');
const patternArb = fc
  .tuple(fc.array(fc.oneof({ arbitrary: segment, weight: 4 }, { arbitrary: fc.constant('+'), weight: 2 }, { arbitrary: fc.constant(''), weight: 1 }), { minLength: 1, maxLength: 3 }), fc.constantFrom('', '*', '/*', '/'))
  .map(([segs, end]) => `${segs.join('/')}${end}`)
  // `+*` is refused by the parser (a `+` is a whole segment); its test is below.
  .filter((p) => !p.includes('+*'));
const pathArb = fc
  .tuple(fc.array(fc.oneof(segment, fc.constant('')), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([segs, slash]) => `${segs.join('/')}${slash ? '/' : ''}`);
const ruleArb = fc.record({ path: patternArb, capabilities: fc.uniqueArray(fc.constantFrom<AclCapability>(...GRANTS, 'deny'), { minLength: 0, maxLength: 4 }) });
const policiesArb = fc.array(fc.record({ name: fc.constantFrom('p0', 'p1', 'p2'), rules: fc.array(ruleArb, { minLength: 1, maxLength: 5 }) }), { minLength: 1, maxLength: 3 });

describe('Vault ACL translated into Cedar', () => {
  it('decides exactly as Vault does', async () => {
    // Probes are random paths and paths made from the policies' own patterns (a `+` filled with a
    // segment or nothing, a `*` with a suffix, a `/` added or not), half of them `list`, so that
    // they land on the boundaries where precedence and the LIST lookups differ.
    const probesFor = (patterns: readonly string[]) =>
      fc.array(
        fc.tuple(
          fc.oneof(
            pathArb,
            fc.tuple(fc.constantFrom(...patterns), fc.array(fc.constantFrom('', 'a', 'b', 'ab'), { minLength: 4, maxLength: 4 }), fc.constantFrom('', '/', 'a', '/a/')).map(([pattern, fills, suffix]) => {
              let n = 0;
              const body = pattern.endsWith('*') ? pattern.slice(0, -1) + suffix : pattern;
              return body.split('/').map((seg) => (seg === '+' ? fills[n++ % 4]! : seg)).join('/');
            }),
            fc.tuple(pathArb, fc.constantFrom('', '/')).map(([p, slash]) => p + slash),
          ),
          fc.oneof(fc.constant<AclCapability>('list'), fc.constantFrom(...GRANTS)),
        ),
        { minLength: 1, maxLength: 24 },
      );
    const scenario = policiesArb.chain((raw) =>
      fc.tuple(fc.constant(raw), fc.subarray(['p0', 'p1', 'p2']), probesFor(raw.flatMap((p) => p.rules.map((r) => r.path)))),
    );
    await fc.assert(
      fc.asyncProperty(scenario, async ([raw, roles, probes]) => {
        const named = [...new Map(raw.map((p) => [p.name, p])).values()].map((p) => {
          const hcl = p.rules.map((r) => `path "${r.path}" {\n  capabilities = [${r.capabilities.map((c) => `"${c}"`).join(', ')}]\n}`).join('\n');
          return { name: p.name, policy: parseAclPolicy(hcl) };
        });
        // Rules without capabilities compile to nothing, yet still take part in precedence.
        const authorizer = authorizerFor(aclPoliciesToCedar(TENANT, named) ?? '');
        for (const [path, cap] of probes) {
          expect({ path, cap, allowed: await cedarAllows(authorizer, roles, path, cap) }).toEqual({ path, cap, allowed: referenceAllows(named, roles, path, cap) });
        }
      }),
      { numRuns: 150 },
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

  it('lets the most specific pattern decide, as Vault does, across policies', async () => {
    const broad = parseAclPolicy('path "secret/*" { capabilities = ["read", "list"] }');
    const narrow = parseAclPolicy('path "secret/private/*" { capabilities = ["create"] }\npath "secret/open" { capabilities = ["read"] }');
    const denyAll = parseAclPolicy('path "secret/*" { capabilities = ["deny"] }');
    const authorizer = authorizerFor(aclPoliciesToCedar(TENANT, [{ name: 'broad', policy: broad }, { name: 'narrow', policy: narrow }, { name: 'lockdown', policy: denyAll }])!);
    // The union of the two would grant read; Vault's narrower `secret/private/*` decides: create only.
    expect(await cedarAllows(authorizer, ['broad', 'narrow'], 'secret/private/x', 'read')).toBe(false);
    expect(await cedarAllows(authorizer, ['broad', 'narrow'], 'secret/private/x', 'create')).toBe(true);
    expect(await cedarAllows(authorizer, ['broad', 'narrow'], 'secret/other', 'read')).toBe(true);
    // Without the narrow policy, its pattern does not outrank anything.
    expect(await cedarAllows(authorizer, ['broad'], 'secret/private/x', 'read')).toBe(true);
    // A deny on a broader pattern gives way to an exact grant, and wins on its own pattern.
    expect(await cedarAllows(authorizer, ['lockdown', 'narrow'], 'secret/open', 'read')).toBe(true);
    expect(await cedarAllows(authorizer, ['lockdown', 'narrow'], 'secret/other', 'read')).toBe(false);
    expect(await cedarAllows(authorizer, ['lockdown', 'broad'], 'secret/other', 'read')).toBe(false);
  });

  it('matches an exact pattern for list with the trailing slash, and only for list', async () => {
    const policy = parseAclPolicy('path "secret/metadata" { capabilities = ["list", "read"] }\npath "secret/*" { capabilities = ["deny"] }');
    const authorizer = authorizerFor(aclPoliciesToCedar(TENANT, [{ name: 'p0', policy }])!);
    expect(await cedarAllows(authorizer, ['p0'], 'secret/metadata/', 'list')).toBe(true);
    expect(await cedarAllows(authorizer, ['p0'], 'secret/metadata/', 'read')).toBe(false);
    expect(await cedarAllows(authorizer, ['p0'], 'secret/metadata', 'read')).toBe(true);
  });

  it('follows Vault 1.15 on LIST: globs and `+` on the path without its slash decide first, and `+` matches an empty segment', async () => {
    const one = (hcl: string) => authorizerFor(aclPoliciesToCedar(TENANT, [{ name: 'p0', policy: parseAclPolicy(hcl) }])!);
    const plusDeny = one('path "secret/metadata/+" { capabilities = ["deny"] }\npath "secret/metadata/*" { capabilities = ["list"] }');
    expect(await cedarAllows(plusDeny, ['p0'], 'secret/metadata/team/', 'list')).toBe(false);
    expect(await cedarAllows(plusDeny, ['p0'], 'secret/metadata/', 'list')).toBe(false);
    expect(await cedarAllows(plusDeny, ['p0'], 'secret/metadata/team/x/', 'list')).toBe(true);
    const lock = aclPoliciesToCedar(TENANT, [
      { name: 'lock', policy: parseAclPolicy('path "secret/foo*" { capabilities = ["deny"] }') },
      { name: 'team', policy: parseAclPolicy('path "secret/foo/*" { capabilities = ["list"] }') },
    ])!;
    expect(await cedarAllows(authorizerFor(lock), ['lock', 'team'], 'secret/foo/', 'list')).toBe(false);
    expect(await cedarAllows(authorizerFor(lock), ['team'], 'secret/foo/', 'list')).toBe(true);
    const namespaced = one('path "+/sys/policies/acl" { capabilities = ["list"] }');
    expect(await cedarAllows(namespaced, ['p0'], 'ns/sys/policies/acl/', 'list')).toBe(true);
    expect(await cedarAllows(namespaced, ['p0'], 'ns/sys/policies/acl/', 'read')).toBe(false);
  });

  it('refuses policies that would compile to too many patterns or too large a file', () => {
    // At most 1,000 path blocks per policy (hcl.ts), so six policies.
    const wide = Array.from({ length: 6 }, (_, p) => ({
      name: `p${p}`,
      policy: parseAclPolicy(Array.from({ length: p === 5 ? 1 : 1000 }, (_, i) => `path "secret/p${p}/k${i}" { capabilities = ["read"] }`).join('\n')),
    }));
    expect(() => aclPoliciesToCedar(TENANT, wide)).toThrow(/5001 distinct paths; at most 5000/);
    // Fifty policies each granting the broad `secret/*` and naming 99 keys of their own: every
    // broad rule must name all 4,950 keys, which outrank it.
    const many = Array.from({ length: 50 }, (_, p) => ({
      name: `p${p}`,
      policy: parseAclPolicy(['path "secret/*" { capabilities = ["read", "deny"] }', ...Array.from({ length: 99 }, (_, k) => `path "secret/p${p}/k${k}" { capabilities = ["read"] }`)].join('\n')),
    }));
    expect(() => aclPoliciesToCedar(TENANT, many)).toThrow(/characters of Cedar; at most 8000000/);
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
    const narrower = parseAclPolicy('path "a/+/b/c" { capabilities = ["update"] }\npath "x/" { capabilities = ["list"] }\npath "y/z*" { capabilities = [] }\npath "a/q/b/c" { capabilities = ["read"] }\npath "a/r/b/d" { capabilities = ["read"] }\npath "y/zz" { capabilities = ["read"] }');
    const text = aclPoliciesToCedar(TENANT, [{ name: 'p0', policy }, { name: 'p1', policy: narrower }])!;
    expect(text).toContain('unless');
    expect(text).toContain('.contains(resource.path)');
    const answer = cedar.validate({ schema: rampartSchema(), policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
    expect(answer).toMatchObject({ type: 'success', validationErrors: [] });
  });

  it('compiles the three pattern shapes', () => {
    expect(pathCondition('secret/data/app')).toBe('resource.path == "secret/data/app"');
    expect(pathCondition('secret/data/*')).toBe('resource.path like "secret/data/*"');
    expect(pathCondition('secret/+')).toBe('resource has seg0 && resource.seg0 == "secret" && resource has seg1 && !(resource has tail2)');
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

  it('drops a leading slash from a path, as Vault does', () => {
    expect(parseAclPolicy('path "/secret/data/*" { capabilities = ["read"] }').rules).toEqual([{ path: 'secret/data/*', capabilities: ['read'] }]);
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
