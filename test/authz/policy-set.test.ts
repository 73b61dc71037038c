import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cedar } from '../../src/authz/cedar-wasm.js';
import { TEMPLATE_LINKS_FILE, policiesById } from '../../src/authz/policy-set.js';

/** Policy ids, templates and links of a version's files (src/authz/policy-set.ts). */

describe('policiesById', () => {
  it('names every policy by its @id exactly as Cedar reads the annotation, else by file position', () => {
    const idValue = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('a"b', 'back\\slash', 'ü-ß', 'x y', '\\u{1F600}'));
    const annotation = fc.oneof(
      idValue.map((v) => `@id(${JSON.stringify(v)})`),
      fc.constantFrom('@note("x")', '@advice', '// a comment\n', '@id_like("q")', '@ident("z")'),
    );
    const policy = fc.array(annotation, { maxLength: 3 }).map((anns) => {
      const ids = anns.filter((a) => a.startsWith('@id('));
      // Cedar refuses a second @id on one policy; keep the first.
      const kept = anns.filter((a) => !a.startsWith('@id(') || a === ids[0]);
      return `${kept.join('\n')}\npermit (principal, action, resource);`;
    });
    fc.assert(
      fc.property(fc.array(policy, { minLength: 1, maxLength: 6 }), (policies) => {
        const text = policies.join('\n');
        const parts = cedar.policySetTextToParts(text);
        fc.pre(parts.type === 'success');
        const expected = policies.map((p, n) => {
          const json = cedar.policyToJson(p);
          const id = json.type === 'success' ? json.json.annotations?.id : undefined;
          return typeof id === 'string' && id !== '' ? id : `f.cedar#${n}`;
        });
        fc.pre(new Set(expected).size === expected.length);
        return JSON.stringify(Object.keys(policiesById({ 'f.cedar': text })).sort()) === JSON.stringify([...expected].sort());
      }),
      { numRuns: 200 },
    );
  });

  it('links templates into static policies named by the link, and refuses what cannot be linked', () => {
    const viewer = '@id("viewer")\npermit (principal == ?principal, action, resource in ?resource);\n';
    const link = (values: Record<string, unknown>, template = 'viewer') => JSON.stringify([{ id: 'alice-views', template, values }]);
    const linked = policiesById({
      'v.cedar': viewer,
      [TEMPLATE_LINKS_FILE]: link({ '?principal': { type: 'User', id: 'alice' }, '?resource': { type: 'Folder', id: 'f1' } }),
    });
    expect(Object.keys(linked)).toEqual(['alice-views']);
    expect(linked['alice-views']).toContain('principal == User::"alice"');
    expect(linked['alice-views']).toContain('resource in Folder::"f1"');

    const refused = (files: Record<string, string>) => {
      try {
        policiesById(files);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(refused({ 'v.cedar': 'permit (principal == ?principal, action, resource);' })).toContain('a template needs an @id');
    expect(refused({ 'v.cedar': viewer, [TEMPLATE_LINKS_FILE]: link({ '?principal': { type: 'User', id: 'a' } }) })).toContain('?resource must be');
    expect(refused({ 'v.cedar': viewer, [TEMPLATE_LINKS_FILE]: link({}, 'nope') })).toContain('no template with @id("nope")');
    expect(
      refused({ 'v.cedar': viewer, [TEMPLATE_LINKS_FILE]: link({ '?principal': { type: 'U', id: 'a' }, '?resource': { type: 'F', id: 'f' }, '?other': { type: 'X', id: 'x' } }) }),
    ).toContain('no slot ?other');
    expect(refused({ 'v.cedar': viewer, [TEMPLATE_LINKS_FILE]: '{' })).toContain('not JSON');
    expect(refused({ 'v.cedar': `${viewer}\n@id("viewer")\npermit (principal, action, resource);` })).toContain('"viewer" is used twice');
  });
});
