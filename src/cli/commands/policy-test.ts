/**
 * `rampart policy test DIR`: judges a policy directory offline exactly as the server judges a
 * push (syntax, strict schema validation, the policy tests, lockout protection for `rampart`),
 * with the same code, so a push that passes here is only refused for what the server alone
 * knows (the store's current entities, unless `entities.json` stands in for them).
 */
import type { Command } from 'commander';
import { CedarAuthorizer } from '../../authz/cedar-authorizer.js';
import { CedarWasmEvaluator } from '../../authz/cedar-wasm-evaluator.js';
import { entityProblems } from '../../authz/entity-json.js';
import type { EntityJson } from '../../authz/evaluator.js';
import { parsePolicyTests } from '../../authz/policy-tests.js';
import { checkContentShape, judgeCandidate, validationSchema } from '../../authz/policy-versions.js';
import type { Cli } from '../main.js';
import { readPolicyDirectory } from './policy-directory.js';
import { type StoreFlags, withStoreOption } from './policy-store-option.js';

interface TestFlags extends StoreFlags {
  tenant: string;
}

/**
 * Adds `test <dir>` under the `policy` group. It needs no server.
 *
 * @example
 * ```ts
 * registerPolicyTest(policyGroup, cli); // rampart policy test ./policies --store docs
 * ```
 */
export function registerPolicyTest(policy: Command, cli: Cli): void {
  withStoreOption(policy.command('test <dir>').description('Validate a policy directory and run its tests offline, as a push would'))
    .option('--tenant <name>', 'the tenant the rampart store belongs to (for its lockout check)', 'default')
    .action(async (dir: string, flags: TestFlags) => {
      const read = await readPolicyDirectory(dir);
      const content = { policies: read.policies, schema: read.schema ?? null, tests: read.tests };
      checkContentShape(flags.store, content);
      const entities = read.entities ?? [];
      if (!Array.isArray(entities)) throw new Error(`${dir}/entities.json must hold a JSON array of Cedar entities`);
      const problems = entityProblems(entities, validationSchema(flags.store, content.schema));
      if (problems.length > 0) throw new Error(`${dir}/entities.json: ${problems.join('; ')}`);
      const evaluator = new CedarWasmEvaluator();
      const rejection = await judgeCandidate(
        { evaluator, authorizerFor: (policies) => new CedarAuthorizer({ policies, evaluator }) },
        {
          tenant: flags.tenant,
          store: flags.store,
          content,
          entities: entities as EntityJson[],
          caller: undefined,
          context: { tenant: flags.tenant, source_ip: '127.0.0.1', mtls: false, request_time: Math.floor(Date.now() / 1000) },
        },
      );
      if (rejection) {
        for (const reason of rejection.reasons) cli.out.note(`  ${reason}`);
        throw new Error(`${dir} would be rejected (${rejection.code}): ${rejection.reasons.length} problem(s)`);
      }
      const cases = parsePolicyTests(content.tests).length;
      cli.out.line(`ok: ${Object.keys(content.policies).length} policy file(s) valid, ${cases} test case(s) passed`);
    });
}
