import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cedar } from '../../src/authz/cedar-wasm.js';
import { RAMPART_ACTIONS, RAMPART_ENTITY_TYPES, rampartSchema } from '../../src/authz/rampart-schema.js';
import { seedPolicies } from '../../src/authz/seed-policies.js';

/**
 * The rampart store is validated strictly against rampartSchema(): an action a route uses but the
 * schema lacks would make every policy naming it a rejected push. The action and entity type
 * literals of the server code (src/server: route declarations and authorizeRequest calls) are the
 * source of truth this test holds the schema to. Actions that only name audit events no policy
 * decides (findings, background jobs, bootstrap) are not scanned.
 */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [readFileSync(join(dir, e.name), 'utf8')] : [],
  );
}
const code = sources('src/server').join('\n');

describe('the rampart schema', () => {
  it('parses', () => {
    expect(cedar.checkParseSchema(rampartSchema())).toEqual({ type: 'success' });
  });

  it('declares every action a route or handler authorizes', () => {
    // Route declarations (`authz: { action: '…'`) and handler calls (`authorizeRequest(…, { …, action: '…'`);
    // an `action` of an audit event that no policy decides (a finding, a background job) is neither.
    const declared = [...code.matchAll(/authz: \{ action: '([a-z0-9-]+:[a-z0-9-]+)'/g)];
    const called = [...code.matchAll(/authorizeRequest\([^;]*?action: '([a-z0-9-]+:[a-z0-9-]+)'/gs)];
    const used = new Set([...declared, ...called].map((m) => m[1]!));
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter((a) => !RAMPART_ACTIONS.includes(a));
    expect(missing).toEqual([]);
  });

  it('declares every Rampart entity type the code builds', () => {
    const used = new Set([...code.matchAll(/type: '(Rampart::[A-Za-z]+)'/g)].map((m) => m[1]!));
    expect([...used].filter((t) => !RAMPART_ENTITY_TYPES.includes(t))).toEqual([]);
  });

  it('validates the seed policies of the operator tenant and of any other', () => {
    for (const tenant of ['default', 'acme']) {
      const answer = cedar.validate({ schema: rampartSchema(), policies: { staticPolicies: seedPolicies(tenant)['rampart.cedar']! }, validationSettings: { mode: 'strict' } });
      expect(answer).toMatchObject({ type: 'success', validationErrors: [] });
    }
  });
});
