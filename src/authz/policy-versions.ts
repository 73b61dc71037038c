/**
 * The lifecycle of a policy store's versions: judging a candidate (syntax, strict schema
 * validation, the store's policy tests, lockout protection for `rampart`), numbering it, and
 * describing versions with their diffs. Every change is a new immutable version; a rollback is a
 * new version whose content equals an older one, judged again as any push is, because the
 * schema, entities and tests it must pass may have changed since.
 */
import type { Clock } from '../core/clock.js';
import { AuthzError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import type { Authorizer, AuthzRequest } from './authorizer.js';
import { RAMPART_POLICY_STORE } from './entities.js';
import type { EntityJson, PolicyEvaluator } from './evaluator.js';
import { locksOut } from './lockout.js';
import { unifiedDiff } from './policy-diff.js';
import { policiesById } from './policy-set.js';
import { PolicyTestsInvalid, parsePolicyTests, runPolicyTests } from './policy-tests.js';
import { SCHEMA_FILE, validatePolicySet } from './policy-validation.js';
import { rampartSchema } from './rampart-schema.js';
import { policyHash } from './seed-policies.js';
import type { PolicyStore, PolicyVersionRecord } from './store.js';

/** Policy files in one version. */
export const MAX_POLICY_FILES = 256;
/** Policies in one version, across its files (the benchmark's largest set). */
export const MAX_POLICIES = 10_000;

/** The content of a version: what a push carries and a rollback copies. */
export interface PolicyContent {
  readonly policies: Readonly<Record<string, string>>;
  /** Null for the `rampart` store, which is validated against Rampart's own schema. */
  readonly schema: string | null;
  readonly tests: Readonly<Record<string, string>>;
}

export type RejectionCode = 'authz.policy_parse_failed' | 'authz.policy_invalid' | 'authz.policy_tests_failed' | 'authz.lockout';

export interface Rejection {
  readonly code: RejectionCode;
  readonly reasons: readonly string[];
}

export interface JudgeInput {
  readonly tenant: string;
  readonly store: string;
  readonly content: PolicyContent;
  /** The store's entities, which the policy tests run with. */
  readonly entities: readonly EntityJson[];
  readonly caller: Principal | undefined;
  /** The context of the request making the change, for the lockout probe. */
  readonly context: AuthzRequest['context'];
}

export interface JudgeDeps {
  readonly evaluator: PolicyEvaluator;
  /** An authorizer as the request path builds one, over the given policy store. */
  readonly authorizerFor: (policies: PolicyStore) => Authorizer;
}

/**
 * The schema a store's policies are validated against: Rampart's own for `rampart`, the pushed
 * one otherwise (none: the policies are only parsed).
 */
export function validationSchema(store: string, schema: string | null): string | null {
  return store === RAMPART_POLICY_STORE ? rampartSchema() : schema;
}

/**
 * Refuses content over the size limits before any work is done on it.
 * Throws `authz.limit_exceeded`, `authz.schema_fixed`.
 */
export function checkContentShape(store: string, content: PolicyContent): void {
  const files = Object.keys(content.policies).length;
  if (files > MAX_POLICY_FILES) throw new AuthzError('authz.limit_exceeded', `${files} policy files; at most ${MAX_POLICY_FILES}`);
  if (store === RAMPART_POLICY_STORE && content.schema !== null) {
    throw new AuthzError('authz.schema_fixed', 'the rampart store is validated against Rampart\'s own schema; push it without one');
  }
}

/**
 * Returns undefined when the content may become active, else the first check it failed. Throws
 * `authz.limit_exceeded` for more than {@link MAX_POLICIES} policies: refused, not a version.
 */
export async function judgeCandidate(deps: JudgeDeps, input: JudgeInput): Promise<Rejection | undefined> {
  const { tenant, store, content } = input;
  const schema = validationSchema(store, content.schema);
  const invalid = validatePolicySet(deps.evaluator, content.policies, schema);
  if (invalid) return { code: invalid.kind === 'parse' ? 'authz.policy_parse_failed' : 'authz.policy_invalid', reasons: invalid.reasons };
  const count = Object.keys(policiesById(content.policies)).length;
  if (count > MAX_POLICIES) throw new AuthzError('authz.limit_exceeded', `${count} policies; at most ${MAX_POLICIES}`);

  let cases;
  try {
    cases = parsePolicyTests(content.tests);
  } catch (err) {
    if (err instanceof PolicyTestsInvalid) return { code: 'authz.policy_tests_failed', reasons: err.problems };
    throw err;
  }
  if (cases.length > 0) {
    // The rampart store is evaluated without a schema on the request path; its tests are too.
    const evalSchema = store === RAMPART_POLICY_STORE ? undefined : (content.schema ?? undefined);
    const prepared = await deps.evaluator.prepare({ policies: content.policies, ...(evalSchema === undefined ? {} : { schema: evalSchema }) });
    const run = runPolicyTests(deps.evaluator, prepared, cases, input.entities);
    if (run.failures.length > 0) return { code: 'authz.policy_tests_failed', reasons: run.failures };
  }

  if (store === RAMPART_POLICY_STORE) {
    const candidate = versionRecord(tenant, store, 0, content, { author: '', message: '', createdAt: '' }, 'active');
    if (await locksOut({ candidate, caller: input.caller, context: input.context, authorizerFor: deps.authorizerFor })) {
      return {
        code: 'authz.lockout',
        reasons: ['no principal could push policies to the rampart store any more: keep a permit for action authz:push on it (e.g. for the tenant admin role)'],
      };
    }
  }
  return undefined;
}

/** A version record of `content`; `reasons` only for a rejected one. */
export function versionRecord(
  tenant: string,
  store: string,
  version: number,
  content: PolicyContent,
  meta: { author: string; message: string; createdAt: string },
  status: 'active' | 'rejected',
  reasons?: readonly string[],
): PolicyVersionRecord {
  return {
    tenant,
    store,
    version,
    hash: policyHash(content.policies, content.schema),
    policies: content.policies,
    schema: content.schema,
    status,
    author: meta.author,
    message: meta.message,
    createdAt: meta.createdAt,
    ...(Object.keys(content.tests).length > 0 ? { tests: content.tests } : {}),
    ...(status === 'rejected' && reasons ? { reasons } : {}),
  };
}

/**
 * Stores the next version of the store (active or rejected) in the caller's transaction and
 * returns it. The number is taken inside the transaction, and the primary key refuses a second
 * insert of one number, so two concurrent pushes never share a version.
 */
export async function storeVersion(
  policies: PolicyStore,
  clock: Clock,
  input: { tenant: string; store: string; content: PolicyContent; author: string; message: string; rejection: Rejection | undefined },
): Promise<PolicyVersionRecord> {
  const version = await policies.nextVersion(input.tenant, input.store);
  const meta = { author: input.author, message: input.message, createdAt: clock.now().toISOString() };
  const record = input.rejection
    ? versionRecord(input.tenant, input.store, version, input.content, meta, 'rejected', input.rejection.reasons)
    : versionRecord(input.tenant, input.store, version, input.content, meta, 'active');
  await policies.insert(record);
  return record;
}

/** A version's content, for a rollback to it. Throws `authz.version_not_found`. */
export async function contentOf(policies: PolicyStore, tenant: string, store: string, version: number): Promise<PolicyContent> {
  const record = await requireVersion(policies, tenant, store, version);
  return { policies: record.policies, schema: record.schema, tests: record.tests ?? {} };
}

/** Throws `authz.store_not_found` or `authz.version_not_found`. */
export async function requireVersion(policies: PolicyStore, tenant: string, store: string, version: number): Promise<PolicyVersionRecord> {
  const record = await policies.get(tenant, store, version);
  if (record) return record;
  await requireStore(policies, tenant, store);
  throw new AuthzError('authz.version_not_found', `policy store "${store}" has no version ${version}`);
}

/** Throws `authz.store_not_found` when nothing was ever pushed to the store. */
export async function requireStore(policies: PolicyStore, tenant: string, store: string): Promise<number> {
  const latest = await policies.latestVersion(tenant, store);
  if (latest === 0) throw new AuthzError('authz.store_not_found', `no policy store "${store}" in tenant "${tenant}"`);
  return latest;
}

/**
 * Unified diffs from `before` to `after`, per file: each policy file, the schema
 * (`schema.cedarschema`) and each test file; files equal on both sides are left out.
 */
export function diffVersions(before: PolicyVersionRecord | undefined, after: PolicyVersionRecord): Record<string, string> {
  const files = (r: PolicyVersionRecord | undefined): Record<string, string> => ({
    ...(r?.policies ?? {}),
    ...(r?.schema ? { [SCHEMA_FILE]: r.schema } : {}),
    ...(r?.tests ?? {}),
  });
  const a = files(before);
  const b = files(after);
  const out: Record<string, string> = {};
  for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const diff = unifiedDiff(name, a[name], b[name]);
    if (diff !== '') out[name] = diff;
  }
  return out;
}
