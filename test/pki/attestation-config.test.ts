import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, resolveServerConfig } from '../../src/core/config.js';

/** `k8s_attestors` in the config file: what is accepted, and that every mistake is refused at start-up. */
describe('k8s_attestors configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-k8s-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string) => {
    writeFileSync(join(dir, 'rampart.yaml'), yaml);
    return resolveServerConfig({ config: join(dir, 'rampart.yaml') }, {}, dir);
  };

  it('reads each source, resolves jwks_file against the config file, and defaults the tenant', () => {
    const config = load(`k8s_attestors:
  - {cluster: a, issuer: https://a, audience: rampart, jwks_file: keys/a.json}
  - {cluster: b, tenant: acme, issuer: https://b, audience: rampart, jwks_uri: https://b/openid/v1/jwks}
  - {cluster: c, issuer: https://c, audience: rampart, jwks: {keys: []}}
`);
    expect(config.k8sAttestors).toEqual([
      { cluster: 'a', tenant: 'default', issuer: 'https://a', audience: 'rampart', jwks: undefined, jwksFile: join(dir, 'keys/a.json'), jwksUri: undefined },
      { cluster: 'b', tenant: 'acme', issuer: 'https://b', audience: 'rampart', jwks: undefined, jwksFile: undefined, jwksUri: 'https://b/openid/v1/jwks' },
      { cluster: 'c', tenant: 'default', issuer: 'https://c', audience: 'rampart', jwks: { keys: [] }, jwksFile: undefined, jwksUri: undefined },
    ]);
    expect(resolveServerConfig({}, {}, dir).k8sAttestors).toEqual([]);
  });

  it.each([
    ['an unknown key', '[{cluster: a, issuer: i, audience: r, jwks_uri: https://x, jwks_url: https://x}]', /unknown key "jwks_url"/],
    ['two key sources', '[{cluster: a, issuer: i, audience: r, jwks_uri: https://x, jwks_file: f}]', /exactly one of jwks/],
    ['no key source', '[{cluster: a, issuer: i, audience: r}]', /exactly one of jwks/],
    ['no audience', '[{cluster: a, issuer: i, jwks_uri: https://x}]', /issuer and audience are required/],
    ['a cluster name that cannot be a path segment', '[{cluster: "a/b", issuer: i, audience: r, jwks_uri: https://x}]', /cluster must be/],
    ['the same cluster twice', '[{cluster: a, issuer: i, audience: r, jwks_uri: https://x}, {cluster: a, issuer: j, audience: r, jwks_uri: https://y}]', /configured twice/],
    ['a plain-http JWKS', '[{cluster: a, issuer: i, audience: r, jwks_uri: http://x}]', /https/],
    ['a JWKS that is not a key set', '[{cluster: a, issuer: i, audience: r, jwks: [1]}]', /JWK Set/],
    ['a mapping instead of a list', '{cluster: a}', /must be a list/],
  ])('refuses %s', (_what, value, message) => {
    expect(() => load(`k8s_attestors: ${value}\n`)).toThrow(ConfigError);
    expect(() => load(`k8s_attestors: ${value}\n`)).toThrow(message);
  });
});
