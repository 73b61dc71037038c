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
 * - `secret/+/app/*`  → segment 0 is `secret`, segment 1 exists (`+` is any one segment, even an
 *   empty one, as in Vault), and the path after two segments is `like "app/*"`.
 *
 * Semantics are Vault's (vault/acl.go `AllowOperation` and `CheckAllowedFromNonExactPaths`, as of
 * Vault 1.15 and its backports to 1.13 and 1.14; Vault docs, concepts/policies, "Priority
 * matching"): of the patterns in the caller's policies that match, one decides, looked up in
 * this order:
 *
 * 1. an exact pattern equal to the path;
 * 2. for `list`, an exact pattern equal to the path without its trailing `/`;
 * 3. for `list`, the best glob or `+` pattern matching the path without its trailing `/`;
 * 4. the best glob or `+` pattern matching the path.
 *
 * "Best" is the pattern whose first `+` or `*` comes latest, then one without a trailing `*`,
 * then fewer `+` segments, then the longer, then the lexicographically greater. The rules of
 * every policy with the deciding pattern are merged: their capabilities are granted unless one
 * lists `deny`. A pattern that does not decide says nothing, neither its grants nor its `deny`.
 *
 * In Cedar, each rule's `permit` and `forbid` carry an `unless` naming every pattern of the
 * tenant's policies that decides before the rule's own and can match the same paths, each
 * guarded by `principal in` the policies that hold it, so that precedence depends on the
 * caller's policies as Vault's does. A glob or `+` rule also gets a `permit` (and `forbid`) of
 * `list` on the path without its trailing `/` (step 3). Cedar's forbid-overrides-permit then
 * merges the rules of the deciding pattern exactly as Vault does.
 * `test/secrets/acl-cedar.test.ts` checks the translation against a port of Vault's algorithm
 * with fast-check.
 */
export const ACL_POLICY_FILE = 'vault-acl.cedar';

/**
 * Bounds on what one tenant's ACL policies compile to. Precedence makes the file grow with the
 * number of overlapping patterns times the rules they outrank, and the compilation compares
 * patterns pairwise; past these a policy write is refused rather than giving Cedar a file it
 * would take long to parse on every cache miss, or holding the tenant's policy lock for long.
 */
export const MAX_ACL_PATTERNS = 5_000;
export const MAX_ACL_CEDAR_CHARS = 8_000_000;

export interface NamedAclPolicy {
  readonly name: string;
  readonly policy: AclPolicy;
}

const str = (s: string) => JSON.stringify(s);
const LIST = 'Rampart::Action::"vault:list"';

const compare = (attr: string, literal: string) => (literal.endsWith('*') ? `${attr} like ${str(literal)}` : `${attr} == ${str(literal)}`);

/** The conditions on segments 0 … `last` of a `+` pattern. */
function segmentConditions(segments: readonly string[], last: number): string[] {
  const conditions: string[] = [];
  for (let i = 0; i <= last; i++) {
    const s = segments[i]!;
    conditions.push(`resource has seg${i}`);
    if (s !== '+') conditions.push(`resource.seg${i} == ${str(s)}`);
  }
  return conditions;
}

/** The Cedar condition that `resource` matches the rule's path pattern. */
export function pathCondition(pattern: string): string {
  const segments = pattern.split('/');
  const last = segments.lastIndexOf('+');
  if (last === -1) return compare('resource.path', pattern);
  const conditions = segmentConditions(segments, last);
  const tail = `tail${last + 1}`;
  if (last === segments.length - 1) conditions.push(`!(resource has ${tail})`);
  else conditions.push(`resource has ${tail}`, compare(`resource.${tail}`, segments.slice(last + 1).join('/')));
  return conditions.join(' && ');
}

/**
 * The condition that the path without its trailing `/` matches a glob or `+` pattern, stated on
 * the attributes of the whole path: its segments are the same but for the last, empty one, and
 * each of its tails is the whole path's without the `/`. So a glob becomes a `like` of its prefix,
 * any characters and a `/`; a final `+` becomes "the tail after it is empty"; a tail `T`, `T/`.
 */
function listedCondition(pattern: string): string {
  const segments = pattern.split('/');
  const last = segments.lastIndexOf('+');
  if (last === -1) return `resource.path like ${str(`${pattern}/`)}`;
  const conditions = segmentConditions(segments, last);
  const tail = `tail${last + 1}`;
  const rest = segments.slice(last + 1).join('/');
  conditions.push(`resource has ${tail}`);
  if (last === segments.length - 1) conditions.push(`resource.${tail} == ""`);
  else conditions.push(rest.endsWith('*') ? `resource.${tail} like ${str(`${rest}/`)}` : `resource.${tail} == ${str(`${rest}/`)}`);
  return conditions.join(' && ');
}

/** The paths a pattern matches, as segments: literal, `+`, and a final prefix when `glob`. */
interface Shape {
  readonly glob: boolean;
  readonly segments: readonly string[];
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
  readonly shape: Shape;
  /** The paths `p/` for every path `p` it matches, or (for a glob) a superset of them. */
  readonly slashed: Shape;
  /** For an exact pattern ending in `/`, the path without it. */
  readonly trimmed: Shape | undefined;
  /** Its leading literal segments: every path it matches starts with them. */
  readonly literals: readonly string[];
  /** The Cedar condition that it matches the path (steps 1 and 2 for an exact pattern, 4 otherwise). */
  readonly matches: string;
  /** For a glob or `+` pattern, the condition that it matches the path without its trailing `/` (step 3). */
  readonly listed: string | undefined;
}

function rank(pattern: string): Ranked {
  const glob = pattern.endsWith('*');
  const body = glob ? pattern.slice(0, -1) : pattern;
  const segments = body.split('/');
  const wildcards = segments.filter((s) => s === '+').length;
  const shape = { glob, segments };
  const open = segments.findIndex((seg, i) => seg === '+' || (glob && i === segments.length - 1));
  const exact = !glob && wildcards === 0;
  return {
    pattern,
    exact,
    // `*` only ends a pattern and `+` is a whole segment (hcl.ts), so the first of either is where
    // Vault's `firstWCOrGlob` points: the first `+`, or for a plain glob the length of its prefix.
    firstWildcard: pattern.search(/[+*]/),
    glob,
    wildcards,
    body,
    shape,
    slashed: glob ? shape : { glob, segments: [...segments, ''] },
    trimmed: !glob && wildcards === 0 && segments.length > 1 && segments.at(-1) === '' ? { glob, segments: segments.slice(0, -1) } : undefined,
    literals: open === -1 ? segments : segments.slice(0, open),
    matches: exact ? exactCondition([pattern]) : pathCondition(pattern),
    listed: exact ? undefined : listedCondition(pattern),
  };
}

/** Whether `a` decides over `b` among glob and `+` patterns both matching one path (Vault's `less`, reversed). */
function outranks(a: Ranked, b: Ranked): boolean {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard > b.firstWildcard;
  if (a.glob !== b.glob) return !a.glob;
  if (a.wildcards !== b.wildcards) return a.wildcards < b.wildcards;
  if (a.body.length !== b.body.length) return a.body.length > b.body.length;
  return a.body > b.body;
}

/**
 * Whether some path matches both shapes. It must never say false for shapes that share a path:
 * the pattern would be left out of an `unless`, and a rule would decide where Vault's would not.
 */
function overlap(a: Shape, b: Shape): boolean {
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
    if (s !== '+' && t !== '+' && s !== t) return false;
  }
}

/** An exact pattern matches its path, and for `list` the path with a trailing `/` (step 2). */
function exactCondition(patterns: readonly string[]): string {
  const set = (values: readonly string[]) => `[${values.map(str).join(', ')}]`;
  if (patterns.length === 1) return `(resource.path == ${str(patterns[0]!)} || (action == ${LIST} && resource.path == ${str(`${patterns[0]!}/`)}))`;
  return `(${set(patterns)}.contains(resource.path) || (action == ${LIST} && ${set(patterns.map((p) => `${p}/`))}.contains(resource.path)))`;
}

/** One pattern, ranked, with the `unless` conditions of its rules. */
interface Precedence {
  readonly ranked: Ranked;
  /** For its rules on the whole path. */
  readonly full: string | undefined;
  /** For a glob or `+` pattern's rules of `list` on the path without its trailing `/`. */
  readonly listed: string | undefined;
}

/**
 * For each pattern, the conditions under which another pattern decides instead, each true only
 * when the caller holds a policy naming that pattern. Exact patterns are grouped per set of
 * holders into one set-membership test.
 */
function precedenceOf(policies: readonly NamedAclPolicy[]): Map<string, Precedence> {
  const holders = new Map<string, Set<string>>();
  for (const p of policies) for (const rule of p.policy.rules) (holders.get(rule.path) ?? holders.set(rule.path, new Set()).get(rule.path)!).add(p.name);
  if (holders.size > MAX_ACL_PATTERNS) {
    throw new SecretsError('secrets.policy_invalid', `the tenant's ACL policies name ${holders.size} distinct paths; at most ${MAX_ACL_PATTERNS} are supported`);
  }
  const heldBy = new Map([...holders].map(([pattern, names]) => [pattern, `principal in [${[...names].sort().map((n) => `Rampart::Role::${str(n)}`).join(', ')}]`]));
  const held = (q: Ranked) => heldBy.get(q.pattern)!;
  const ranked = [...holders.keys()].map(rank);
  // Two patterns can share a path only if the leading literal segments of one begin those of the
  // other: a trie of them gives each pattern its ancestors and descendants, not every pattern.
  interface Node {
    readonly here: Ranked[];
    readonly children: Map<string, Node>;
  }
  const root: Node = { here: [], children: new Map() };
  const nodeOf = (literals: readonly string[]) => {
    let node = root;
    for (const seg of literals) node = node.children.get(seg) ?? (node.children.set(seg, { here: [], children: new Map() }).get(seg) as Node);
    return node;
  };
  for (const r of ranked) nodeOf(r.literals).here.push(r);
  const candidatesOf = (r: Ranked): Ranked[] => {
    const out: Ranked[] = [...root.here];
    let node = root;
    for (const seg of r.literals) {
      node = node.children.get(seg)!;
      out.push(...node.here);
    }
    const below = [...node.children.values()];
    for (let n = below.pop(); n !== undefined; n = below.pop()) {
      out.push(...n.here);
      below.push(...n.children.values());
    }
    return out;
  };

  const terms = (exact: readonly Ranked[], others: readonly string[]) => {
    const byHolders = new Map<string, { held: string; patterns: string[] }>();
    for (const q of exact) {
      const h = held(q);
      (byHolders.get(h) ?? byHolders.set(h, { held: h, patterns: [] }).get(h)!).patterns.push(q.pattern);
    }
    const all = [...[...byHolders.values()].map((g) => `(${g.held} && ${exactCondition(g.patterns)})`), ...others];
    return all.length === 0 ? undefined : all.join(' || ');
  };

  const out = new Map<string, Precedence>();
  for (const r of ranked) {
    const candidates = candidatesOf(r);
    if (r.exact) {
      // Two exact patterns share a path only as `list` on `r/`, where the exact `r/` decides.
      out.set(r.pattern, { ranked: r, full: terms(candidates.filter((q) => q.pattern === `${r.pattern}/`), []), listed: undefined });
      continue;
    }
    const exactOver: Ranked[] = [];
    const exactForListed: Ranked[] = [];
    const fullOver: string[] = [];
    const listedFirst: string[] = [];
    const listedOver: string[] = [];
    for (const q of candidates) {
      if (q.exact) {
        if (overlap(r.shape, q.shape) || overlap(r.shape, q.slashed)) exactOver.push(q);
        if (overlap(r.shape, q.shape) || (q.trimmed !== undefined && overlap(r.shape, q.trimmed))) exactForListed.push(q);
        continue;
      }
      if (overlap(r.shape, q.slashed)) listedFirst.push(`(${held(q)} && ${q.listed})`);
      if (q !== r && outranks(q, r) && overlap(r.shape, q.shape)) {
        fullOver.push(`(${held(q)} && ${q.matches})`);
        listedOver.push(`(${held(q)} && ${q.listed})`);
      }
    }
    if (listedFirst.length > 0) fullOver.push(`(action == ${LIST} && (${listedFirst.join(' || ')}))`);
    out.set(r.pattern, { ranked: r, full: terms(exactOver, fullOver), listed: terms(exactForListed, listedOver) });
  }
  return out;
}

function ruleToCedar(tenant: string, name: string, index: number, rule: AclRule, precedence: Precedence): string[] {
  const tenantScope = `principal.tenant == ${str(tenant)} && resource.tenant == ${str(tenant)}`;
  const principal = `principal in Rampart::Role::${str(name)}`;
  const unless = (condition: string | undefined) => (condition === undefined ? '' : `\nunless { ${condition} }`);
  const r = precedence.ranked;
  const out: string[] = [];
  const granted = rule.capabilities.filter((c) => c !== 'deny');
  const deny = rule.capabilities.includes('deny');
  const id = (suffix: string) => `@id(${str(`vault-acl/${name}/${index}${suffix}`)})`;
  if (granted.length > 0) {
    const actions = granted.map((c) => `Rampart::Action::${str(`vault:${c}`)}`).join(', ');
    out.push(`${id('')}\npermit (${principal}, action in [${actions}], resource is ${VAULT_PATH_TYPE})\nwhen { ${tenantScope} && ${r.matches} }${unless(precedence.full)};`);
  }
  if (deny) out.push(`${id('/deny')}\nforbid (${principal}, action, resource is ${VAULT_PATH_TYPE})\nwhen { ${tenantScope} && ${r.matches} }${unless(precedence.full)};`);
  if (r.listed !== undefined) {
    const listed = `when { ${tenantScope} && ${r.listed} }${unless(precedence.listed)};`;
    if (granted.includes('list')) out.push(`${id('/list')}\npermit (${principal}, action == ${LIST}, resource is ${VAULT_PATH_TYPE})\n${listed}`);
    if (deny) out.push(`${id('/deny-list')}\nforbid (${principal}, action == ${LIST}, resource is ${VAULT_PATH_TYPE})\n${listed}`);
  }
  return out;
}

/** The Cedar file holding every ACL policy of the tenant; undefined when there is none. */
export function aclPoliciesToCedar(tenant: string, policies: readonly NamedAclPolicy[]): string | undefined {
  const precedence = precedenceOf(policies);
  const parts = policies.flatMap((p) => p.policy.rules.flatMap((rule, i) => ruleToCedar(tenant, p.name, i, rule, precedence.get(rule.path)!)));
  if (parts.length === 0) return undefined;
  const text = `// Generated from the Vault ACL policies of sys/policy; edit those, not this file.\n\n${parts.join('\n\n')}\n`;
  if (text.length > MAX_ACL_CEDAR_CHARS) {
    throw new SecretsError('secrets.policy_invalid', `the tenant's ACL policies would compile to ${text.length} characters of Cedar; at most ${MAX_ACL_CEDAR_CHARS} are supported`);
  }
  return text;
}
