import { VAULT_PATH_TYPE } from '../../authz/vault-path.js';
import { SecretsError } from '../../core/errors.js';
import type { AclPolicy, AclRule } from './hcl.js';

/**
 * Vault ACL policies, translated into Cedar so that one engine decides every request.
 *
 * A token's Vault policies are its roles, so a policy named `dev` applies to
 * `principal in Rampart::Role::"dev"`. Each path block becomes one `permit` for its capabilities
 * (`Rampart::Action::"vault:<capability>"`) and, when it lists `deny`, one `forbid` for every
 * action. The path pattern becomes a condition on the `Rampart::VaultPath` resource (attributes
 * in src/authz/vault-path.ts):
 *
 * - `secret/data/app` → `resource.path == "secret/data/app"` (and, for `list`, `"secret/data/app/"`)
 * - `secret/data/*`   → `resource.path like "secret/data/*"`
 * - `secret/+/app/*`  → segment 0 is `secret`, segment 1 is non-empty, and the path after two
 *   segments is `like "app/*"`.
 *
 * Semantics are Vault's (vault/acl.go `AllowOperation`; Vault docs, concepts/policies, "Priority
 * matching"): of all the patterns in the caller's policies that match the path, one decides.
 * An exact pattern decides first (for `list`, also the exact pattern without the path's trailing
 * `/`); otherwise the pattern whose first `+` or `*` comes latest, then one without a trailing
 * `*`, then fewer `+` segments, then the longer, then the lexicographically greater. The rules
 * of every policy with that same pattern are merged: their capabilities are granted unless one
 * lists `deny`. A broader pattern says nothing once a more specific one matches, neither its
 * grants nor its `deny`.
 *
 * In Cedar, each rule's `permit` and `forbid` carry an `unless` naming every pattern of the
 * tenant's policies that outranks the rule's own and can match the same paths, each guarded by
 * `principal in` the policies that hold it, so that the precedence depends on the caller's
 * policies as Vault's does. Cedar's forbid-overrides-permit then merges the rules of the
 * deciding pattern exactly as Vault does. `test/secrets/acl-cedar.test.ts` checks the
 * translation against a port of Vault's algorithm with fast-check.
 */
export const ACL_POLICY_FILE = 'vault-acl.cedar';

/**
 * Patterns named in `unless` clauses over the whole file. Precedence makes the file quadratic in
 * nested patterns (`a*`, `ab*`, `abc*`, …); past this the policy write is refused rather than
 * handing Cedar a file it would take long to parse on every cache miss.
 */
export const MAX_PRECEDENCE_TERMS = 20_000;

export interface NamedAclPolicy {
  readonly name: string;
  readonly policy: AclPolicy;
}

const str = (s: string) => JSON.stringify(s);

/** The Cedar condition that `resource` matches the rule's path pattern. */
export function pathCondition(pattern: string): string {
  const segments = pattern.split('/');
  const last = segments.lastIndexOf('+');
  const compare = (attr: string, literal: string) => (literal.endsWith('*') ? `${attr} like ${str(literal)}` : `${attr} == ${str(literal)}`);
  if (last === -1) return compare('resource.path', pattern);
  const conditions: string[] = [];
  for (let i = 0; i <= last; i++) {
    const s = segments[i]!;
    conditions.push(`resource has seg${i}`, s === '+' ? `resource.seg${i} != ""` : `resource.seg${i} == ${str(s)}`);
  }
  const tail = `tail${last + 1}`;
  if (last === segments.length - 1) conditions.push(`!(resource has ${tail})`);
  else conditions.push(`resource has ${tail}`, compare(`resource.${tail}`, segments.slice(last + 1).join('/')));
  return conditions.join(' && ');
}

/** A pattern as Vault ranks it. */
interface Ranked {
  readonly pattern: string;
  readonly exact: boolean;
  /** Where its first `+` or `*` is. */
  readonly firstWildcard: number;
  readonly glob: boolean;
  readonly wildcards: number;
  /** The pattern without its trailing `*`. */
  readonly body: string;
}

function rank(pattern: string): Ranked {
  const glob = pattern.endsWith('*');
  const wildcards = pattern.split('/').filter((s) => s === '+').length;
  // `*` only ends a pattern and `+` is a whole segment (hcl.ts), so the first of either is where
  // Vault's `firstWCOrGlob` points: the first `+`, or for a plain glob the length of its prefix.
  return { pattern, exact: !glob && wildcards === 0, firstWildcard: pattern.search(/[+*]/), glob, wildcards, body: glob ? pattern.slice(0, -1) : pattern };
}

/** Whether `a` decides over `b` on a path both match (Vault's `less`, reversed). */
function outranks(a: Ranked, b: Ranked): boolean {
  // Two exact patterns match one path only as `list` on `b/`, where the exact `b/` decides.
  if (a.exact && b.exact) return a.pattern === `${b.pattern}/`;
  if (a.exact !== b.exact) return a.exact;
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard > b.firstWildcard;
  if (a.glob !== b.glob) return !a.glob;
  if (a.wildcards !== b.wildcards) return a.wildcards < b.wildcards;
  if (a.body.length !== b.body.length) return a.body.length > b.body.length;
  return a.body > b.body;
}

/**
 * Whether some path can match both patterns (an exact one also as `list` with a trailing `/`).
 * It must never say false for patterns that share a path: the outranking one would be left out
 * of an `unless`, and the broader rule would decide where Vault's would not.
 */
function overlaps(a: Ranked, b: Ranked): boolean {
  const variants = (r: Ranked) => (r.exact ? [r.pattern, `${r.pattern}/`] : [r.pattern]);
  return variants(a).some((x) => variants(b).some((y) => patternsOverlap(x, y)));
}

function patternsOverlap(x: string, y: string): boolean {
  const split = (p: string) => ({ glob: p.endsWith('*'), segments: (p.endsWith('*') ? p.slice(0, -1) : p).split('/') });
  const a = split(x);
  const b = split(y);
  for (let i = 0; ; i++) {
    // A glob's last segment is a prefix of the rest of the path, which absorbs whatever follows.
    const aPrefix = a.glob && i === a.segments.length - 1;
    const bPrefix = b.glob && i === b.segments.length - 1;
    if (aPrefix && bPrefix) return a.segments[i]!.startsWith(b.segments[i]!) || b.segments[i]!.startsWith(a.segments[i]!);
    if (aPrefix || bPrefix) {
      const [prefix, other] = aPrefix ? [a.segments[i]!, b.segments[i]] : [b.segments[i]!, a.segments[i]];
      return other !== undefined && (other === '+' || other.startsWith(prefix));
    }
    if (i >= a.segments.length || i >= b.segments.length) return a.segments.length === b.segments.length;
    const s = a.segments[i]!;
    const t = b.segments[i]!;
    // `+` is one non-empty segment (pathCondition).
    if (s === '+' || t === '+') {
      if ((s === '+' ? t : s) === '') return false;
    } else if (s !== t) return false;
  }
}

/** The condition that the pattern matches: an exact pattern also matches `list` on it with a trailing `/`. */
function matchCondition(r: Ranked): string {
  if (!r.exact) return pathCondition(r.pattern);
  return `(resource.path == ${str(r.pattern)} || (action == Rampart::Action::"vault:list" && resource.path == ${str(`${r.pattern}/`)}))`;
}

const role = (name: string) => `Rampart::Role::${str(name)}`;

function ruleToCedar(tenant: string, name: string, index: number, rule: AclRule, outranking: string | undefined): string[] {
  const scope = `principal.tenant == ${str(tenant)} && resource.tenant == ${str(tenant)} && ${matchCondition(rank(rule.path))}`;
  const principal = `principal in ${role(name)}`;
  const unless = outranking === undefined ? '' : `\nunless { ${outranking} }`;
  const out: string[] = [];
  const granted = rule.capabilities.filter((c) => c !== 'deny');
  if (granted.length > 0) {
    const actions = granted.map((c) => `Rampart::Action::${str(`vault:${c}`)}`).join(', ');
    out.push(`@id(${str(`vault-acl/${name}/${index}`)})\npermit (${principal}, action in [${actions}], resource is ${VAULT_PATH_TYPE})\nwhen { ${scope} }${unless};`);
  }
  if (rule.capabilities.includes('deny')) {
    out.push(`@id(${str(`vault-acl/${name}/${index}/deny`)})\nforbid (${principal}, action, resource is ${VAULT_PATH_TYPE})\nwhen { ${scope} }${unless};`);
  }
  return out;
}

/**
 * For each pattern, the condition that a pattern outranking it decides instead: one term per
 * such pattern that can match the same paths, true when the caller holds a policy naming it.
 */
function outrankingConditions(policies: readonly NamedAclPolicy[]): Map<string, string> {
  const holders = new Map<string, Set<string>>();
  for (const p of policies) for (const rule of p.policy.rules) (holders.get(rule.path) ?? holders.set(rule.path, new Set()).get(rule.path)!).add(p.name);
  const ranked = [...holders.keys()].map(rank);
  const conditions = new Map<string, string>();
  let terms = 0;
  for (const r of ranked) {
    const over = ranked.filter((q) => q.pattern !== r.pattern && outranks(q, r) && overlaps(q, r));
    terms += over.length;
    if (terms > MAX_PRECEDENCE_TERMS) {
      throw new SecretsError('secrets.policy_invalid', `the tenant's ACL policies nest too many overlapping paths (more than ${MAX_PRECEDENCE_TERMS} precedence terms)`);
    }
    if (over.length > 0) {
      conditions.set(r.pattern, over.map((q) => `(principal in [${[...holders.get(q.pattern)!].map(role).join(', ')}] && ${matchCondition(q)})`).join(' || '));
    }
  }
  return conditions;
}

/** The Cedar file holding every ACL policy of the tenant; undefined when there is none. */
export function aclPoliciesToCedar(tenant: string, policies: readonly NamedAclPolicy[]): string | undefined {
  const outranking = outrankingConditions(policies);
  const parts = policies.flatMap((p) => p.policy.rules.flatMap((rule, i) => ruleToCedar(tenant, p.name, i, rule, outranking.get(rule.path))));
  if (parts.length === 0) return undefined;
  return `// Generated from the Vault ACL policies of sys/policy; edit those, not this file.\n\n${parts.join('\n\n')}\n`;
}
