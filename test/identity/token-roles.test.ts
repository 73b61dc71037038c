import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TokenRoleRecord } from '../../src/identity/store.js';
import { lesserSeconds, roleNumUses, rolePolicies, writeTokenRole } from '../../src/identity/token-roles.js';

/** Token role rules (src/identity/token-roles.ts), as Vault's token store applies them. */
const now = new Date('2026-03-01T00:00:00Z');
const role = (over: Partial<TokenRoleRecord>): TokenRoleRecord => ({ ...writeTokenRole(undefined, 'acme', 'r', {}, now), ...over });

describe('token roles', () => {
  it('starts from Vault defaults and keeps unspecified fields on update', () => {
    const created = writeTokenRole(undefined, 'acme', 'web', { allowedPolicies: ['b', 'a', 'a'], pathSuffix: 'v01' }, now);
    expect(created).toMatchObject({ allowedPolicies: ['a', 'b'], disallowedPolicies: [], orphan: false, renewable: true, pathSuffix: 'v01', tokenNumUses: 0 });
    const updated = writeTokenRole(created, 'acme', 'web', { renewable: false }, now);
    expect(updated).toMatchObject({ allowedPolicies: ['a', 'b'], renewable: false, pathSuffix: 'v01' });
  });

  it('refuses names, suffixes and counts Vault would not store', () => {
    expect(() => writeTokenRole(undefined, 'acme', '-bad', {}, now)).toThrow(/role name/);
    for (const suffix of ['v1', '../x', 'a/b/c', 'x..y']) expect(() => writeTokenRole(undefined, 'acme', 'r', { pathSuffix: suffix }, now), suffix).toThrow(/path_suffix/);
    expect(() => writeTokenRole(undefined, 'acme', 'r', { tokenNumUses: -1 }, now)).toThrow(expect.objectContaining({ code: 'token.uses_invalid' }));
    expect(() => writeTokenRole(undefined, 'acme', 'r', { allowedPolicies: ['bad name'] }, now)).toThrow(/allowed_policies/);
  });

  it('leaves roles without policy lists to the ordinary rules', () => {
    expect(rolePolicies(role({}), ['x'], false, ['p'])).toBeUndefined();
  });

  it('defaults to the allowed list, or the creator\'s policies, with default added', () => {
    expect(rolePolicies(role({ allowedPolicies: ['a', 'b'] }), undefined, false, ['p'])).toEqual(['a', 'b', 'default']);
    expect(rolePolicies(role({ disallowedPolicies: ['x'] }), undefined, false, ['p'])).toEqual(['default', 'p']);
    expect(rolePolicies(role({ allowedPolicies: ['a'], tokenNoDefaultPolicy: true }), undefined, false, [])).toEqual(['a']);
    expect(rolePolicies(role({ allowedPolicies: ['a'] }), undefined, true, [])).toEqual(['a']);
    expect(rolePolicies(role({ allowedPolicies: ['a'], disallowedPolicies: ['default'] }), undefined, false, [])).toEqual(['a']);
  });

  it('never yields a policy outside the allowed list or inside the disallowed one (property)', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'd', 'admin', 'default');
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 4 }), fc.uniqueArray(name, { maxLength: 3 }), fc.option(fc.uniqueArray(name, { maxLength: 4 }), { nil: undefined }), fc.boolean(), fc.uniqueArray(name, { maxLength: 3 }), (allowed, disallowed, requested, noDefault, creator) => {
        const r = role({ allowedPolicies: allowed.filter((p) => p !== 'default'), disallowedPolicies: disallowed });
        let got: string[] | undefined;
        try {
          got = rolePolicies(r, requested, noDefault, creator);
        } catch (err) {
          expect((err as { code?: string }).code).toBe('secrets.invalid_request');
          return;
        }
        if (got === undefined) {
          expect(r.allowedPolicies.length + r.disallowedPolicies.length).toBe(0);
          return;
        }
        for (const p of got) {
          expect(r.disallowedPolicies).not.toContain(p);
          if (r.allowedPolicies.length > 0) expect([...r.allowedPolicies, 'default']).toContain(p);
        }
        if (noDefault) expect(got).not.toContain('default');
      }),
    );
  });

  it('takes the lesser of request and role for TTLs and uses', () => {
    expect(lesserSeconds(undefined, 0)).toBeUndefined();
    expect(lesserSeconds(300, 0)).toBe(300);
    expect(lesserSeconds(undefined, 600)).toBe(600);
    expect(lesserSeconds(900, 600)).toBe(600);
    expect(roleNumUses(0, 0)).toBe(0);
    expect(roleNumUses(0, 3)).toBe(3);
    expect(roleNumUses(9, 3)).toBe(3);
    expect(roleNumUses(2, 3)).toBe(2);
    expect(roleNumUses(7, 0)).toBe(7);
  });
});
