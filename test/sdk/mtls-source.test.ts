import 'reflect-metadata';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { chainPem, createRootCa, issueSvid } from '../../src/pki/ca.js';
import { exportPrivateKeyPkcs8Pem, generateKeyPair } from '../../src/pki/keys.js';
import { parseSpiffeId } from '../../src/pki/spiffe.js';
import { createSvidSource, keyMatchesCertificate, type SvidMaterial, watchSvidFiles } from '../../src/sdk/index.js';

/**
 * SVID sources: the push source the agent's stream feeds, and files replaced atomically (write a
 * temporary file, rename it over the old one), as `rampart agent` writes them.
 */

const clock = new ManualClock();
let dir: string;
let bundlePem: string;
const svids: SvidMaterial[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-svid-source-'));
  const root = await createRootCa({ commonName: 'Root', clock });
  bundlePem = chainPem(root.certificate);
  for (let i = 0; i < 2; i++) {
    const keys = await generateKeyPair();
    const leaf = await issueSvid(root, { publicKey: keys.publicKey, spiffeId: parseSpiffeId(`spiffe://acme.rampart.local/svc/${i}`).id, clock, ttlMs: 3_600_000 });
    svids.push({ svidPem: chainPem(leaf), keyPem: await exportPrivateKeyPkcs8Pem(keys.privateKey), bundlePem });
  }
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const replace = (name: string, content: string) => {
  writeFileSync(join(dir, `.${name}.tmp`), content);
  renameSync(join(dir, `.${name}.tmp`), join(dir, name));
};

describe('createSvidSource', () => {
  it('hands the current SVID out and tells subscribers about each new one until they unsubscribe', () => {
    const source = createSvidSource();
    expect(source.current()).toBeUndefined();
    const seen: string[] = [];
    const unsubscribe = source.onUpdate((s) => seen.push(s.svidPem));
    source.update(svids[0]!);
    unsubscribe();
    source.update(svids[1]!);
    expect(seen).toEqual([svids[0]!.svidPem]);
    expect(source.current()?.svidPem).toBe(svids[1]!.svidPem);
  });
});

describe('watchSvidFiles', () => {
  it('publishes an atomically replaced set, and never a half-replaced one whose key does not match', async () => {
    const [first, second] = [svids[0]!, svids[1]!];
    replace('svid.pem', first.svidPem);
    replace('key.pem', first.keyPem);
    replace('bundle.pem', bundlePem);
    const source = await watchSvidFiles({ svid: join(dir, 'svid.pem'), key: join(dir, 'key.pem'), bundle: join(dir, 'bundle.pem') });
    try {
      expect(source.current()?.svidPem).toBe(first.svidPem);
      const published: SvidMaterial[] = [];
      const next = new Promise<void>((resolve) =>
        source.onUpdate((s) => {
          published.push(s);
          resolve();
        }),
      );
      // The certificate first: until the key follows, the pair does not match and is held back.
      replace('svid.pem', second.svidPem);
      replace('key.pem', second.keyPem);
      await next;
      expect(published.every(keyMatchesCertificate)).toBe(true);
      expect(source.current()?.svidPem).toBe(second.svidPem);
      expect(source.current()?.keyPem).toBe(second.keyPem);
    } finally {
      source.close();
    }
  });

  it('keyMatchesCertificate tells a matching pair from a mismatched one', () => {
    expect(keyMatchesCertificate(svids[0]!)).toBe(true);
    expect(keyMatchesCertificate({ ...svids[0]!, keyPem: svids[1]!.keyPem })).toBe(false);
    expect(keyMatchesCertificate({ ...svids[0]!, keyPem: 'garbage' })).toBe(false);
  });
});
