import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRampartError } from '../../src/core/errors.js';
import { newRegistrationEntry, parseSelector } from '../../src/pki/registration.js';

/** The validation rules of registration entries, for arbitrary input (docs/pki.md, "Registration entries"). */
const base = { tenant: 'acme', trustDomain: 'acme.rampart.local', spiffeId: 'spiffe://acme.rampart.local/ns/pay', parent: 'k8s:cluster:prod', selectors: ['unix:uid:1'], maxTtlMs: 86_400_000, createdBy: 'x', now: new Date(0) };

describe('selectors', () => {
  it('accepts every <type>:<value> of the allowed alphabets, unchanged', () => {
    const type = fc.stringMatching(/^[a-z0-9_]{1,32}$/);
    const value = fc.stringMatching(/^[\x21-\x7e]{1,100}$/);
    fc.assert(
      fc.property(type, value, (t, v) => {
        expect(parseSelector(`${t}:${v}`)).toBe(`${t}:${v}`);
      }),
    );
  });

  it('refuses anything else with pki.selector_invalid, never another error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        fc.pre(!/^[a-z0-9_]{1,32}:[\x21-\x7e]{1,255}$/.test(s));
        try {
          parseSelector(s);
          expect.unreachable(`accepted ${JSON.stringify(s)}`);
        } catch (err) {
          expect(isRampartError(err) && err.code).toBe('pki.selector_invalid');
        }
      }),
    );
  });
});

describe('newRegistrationEntry', () => {
  it('sorts and de-duplicates selectors and DNS names and gives each entry its own id', () => {
    const a = newRegistrationEntry({ ...base, selectors: ['unix:uid:1', 'k8s:ns:pay', 'unix:uid:1'], dnsNames: ['a.svc', 'a.svc'] });
    const b = newRegistrationEntry(base);
    expect(a.selectors).toEqual(['k8s:ns:pay', 'unix:uid:1']);
    expect(a.dnsNames).toEqual(['a.svc']);
    expect(a.id).toMatch(/^reg_[A-Za-z0-9_-]{22}$/);
    expect(a.id).not.toBe(b.id);
    expect(b.ttlMs).toBeNull();
  });

  it('never accepts an ID or ID parent outside the trust domain', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9.-]{1,20}$/), fc.boolean(), (td, asParent) => {
        fc.pre(td !== 'acme.rampart.local');
        const foreign = `spiffe://${td}/x`;
        try {
          newRegistrationEntry(asParent ? { ...base, parent: foreign } : { ...base, spiffeId: foreign });
          expect.unreachable();
        } catch (err) {
          expect(isRampartError(err) && ['pki.spiffe_id_forbidden', 'pki.spiffe_id_invalid'].includes(err.code)).toBe(true);
        }
      }),
    );
  });
});
