import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { PkiError } from '../../src/core/errors.js';
import {
  type CertificateAuthority,
  chainPem,
  createIntermediateCa,
  createRootCa,
  issueServerCertificate,
  issueSvid,
} from '../../src/pki/ca.js';
import {
  exportPrivateKeyPkcs8Pem,
  generateKeyPair,
  importPrivateKeyPkcs8Pem,
  type KeyAlgorithm,
} from '../../src/pki/keys.js';
import { parseSpiffeId, type SpiffeId, spiffeIdOf } from '../../src/pki/spiffe.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

let dir: string;

function write(name: string, contents: string): string {
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
}

function openssl(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('/usr/bin/openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/**
 * `openssl verify` in strict RFC 5280 mode (`-x509_strict`), so encoding mistakes that lenient
 * validators forgive still fail here.
 */
function verify(rootPath: string, untrustedPath: string | undefined, leafPath: string, purpose?: string) {
  return openssl(
    'verify',
    '-x509_strict',
    '-CAfile',
    rootPath,
    ...(untrustedPath === undefined ? [] : ['-untrusted', untrustedPath]),
    ...(purpose === undefined ? [] : ['-purpose', purpose]),
    leafPath,
  );
}

interface ExtensionText {
  readonly critical: boolean;
  readonly value: string;
}

/** Parses `openssl x509 -noout -ext …` output into extension name → value. */
function extensionsOf(certPath: string, names: string): Map<string, ExtensionText> {
  const r = openssl('x509', '-in', certPath, '-noout', '-ext', names);
  expect(r.ok, r.out).toBe(true);
  const result = new Map<string, ExtensionText>();
  let current: { name: string; critical: boolean; lines: string[] } | undefined;
  const flush = () => {
    if (current) result.set(current.name, { critical: current.critical, value: current.lines.join('\n') });
  };
  for (const line of r.out.split('\n')) {
    const header = /^X509v3 (.+?):( critical)?$|^(Authority Information Access):?( critical)?$/.exec(line.trim());
    if (header && !line.startsWith('    ')) {
      flush();
      current = { name: header[1] ?? header[3] ?? '', critical: Boolean(header[2] ?? header[4]), lines: [] };
    } else if (current && line.trim() !== '') {
      current.lines.push(line.trim());
    }
  }
  flush();
  return result;
}

function ext(map: Map<string, ExtensionText>, name: string): ExtensionText {
  const e = map.get(name);
  if (!e) throw new Error(`missing extension ${name}; have ${[...map.keys()].join(', ')}`);
  return e;
}

const LEAF_EXTS = 'subjectAltName,keyUsage,basicConstraints,extendedKeyUsage';

function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san === null ? [] : san.names.items.filter((n) => n.type === 'url').map((n) => n.value);
}

function keyUsageOf(cert: x509.X509Certificate): number {
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku === null) throw new Error('no key usage');
  return ku.usages;
}

describe('CA hierarchy checked with the openssl CLI', () => {
  // openssl verify compares against the real time, so this chain is anchored near it.
  const clock = new ManualClock(Date.now());
  let root: CertificateAuthority;
  let intermediate: CertificateAuthority;
  let rootPath: string;
  let intermediatePath: string;
  let otherRootPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-pki-'));
    root = await createRootCa({ commonName: 'Rampart Test Root CA', clock });
    intermediate = await createIntermediateCa(root, { commonName: 'Rampart Test Issuing CA', clock });
    const otherRoot = await createRootCa({ commonName: 'Rampart Test Root CA', clock });
    rootPath = write('root.pem', chainPem(root.certificate));
    intermediatePath = write('intermediate.pem', chainPem(intermediate.certificate));
    otherRootPath = write('other-root.pem', chainPem(otherRoot.certificate));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('root and intermediate', () => {
    it('root is a self-signed CA with critical basicConstraints and keyCertSign|cRLSign', async () => {
      expect(await root.certificate.isSelfSigned()).toBe(true);
      const exts = extensionsOf(rootPath, 'basicConstraints,keyUsage,subjectKeyIdentifier,authorityKeyIdentifier');
      expect(ext(exts, 'Basic Constraints')).toEqual({ critical: true, value: 'CA:TRUE' });
      expect(ext(exts, 'Key Usage')).toEqual({ critical: true, value: 'Certificate Sign, CRL Sign' });
      expect(ext(exts, 'Subject Key Identifier').critical).toBe(false);
      expect(openssl('verify', '-x509_strict', '-CAfile', rootPath, rootPath).ok).toBe(true);
    });

    it('intermediate verifies against the root and is limited to pathlen 0', () => {
      const r = verify(rootPath, undefined, intermediatePath);
      expect(r.out).toContain(': OK');
      expect(r.ok).toBe(true);
      const exts = extensionsOf(intermediatePath, 'basicConstraints,keyUsage,subjectKeyIdentifier,authorityKeyIdentifier');
      expect(ext(exts, 'Basic Constraints')).toEqual({ critical: true, value: 'CA:TRUE, pathlen:0' });
      expect(ext(exts, 'Key Usage')).toEqual({ critical: true, value: 'Certificate Sign, CRL Sign' });
      const rootSki = ext(extensionsOf(rootPath, 'subjectKeyIdentifier'), 'Subject Key Identifier').value;
      expect(ext(exts, 'Authority Key Identifier').value.replace(/^keyid:/, '')).toBe(rootSki);
    });

    it('serial numbers are random, positive and at most 128 bits', () => {
      const serials = [root, intermediate].map((ca) => ca.certificate.serialNumber);
      for (const s of serials) {
        const value = BigInt(`0x${s}`);
        expect(value).toBeGreaterThan(0n);
        expect(value).toBeLessThan(2n ** 127n);
      }
      expect(new Set(serials).size).toBe(serials.length);
    });
  });

  describe('server certificate', () => {
    let leafPath: string;
    let leaf: x509.X509Certificate;

    beforeAll(async () => {
      const keys = await generateKeyPair();
      leaf = await issueServerCertificate(intermediate, {
        publicKey: keys.publicKey,
        dnsNames: ['rampart.internal', 'localhost'],
        ipAddresses: ['127.0.0.1', '::1'],
        commonName: 'rampart.internal',
        clock,
        ttlMs: DAY_MS,
      });
      leafPath = write('server.pem', chainPem(leaf));
    });

    it('verifies through the intermediate for TLS server and client use', () => {
      expect(verify(rootPath, intermediatePath, leafPath).ok).toBe(true);
      expect(verify(rootPath, intermediatePath, leafPath, 'sslserver').ok).toBe(true);
      expect(verify(rootPath, intermediatePath, leafPath, 'sslclient').ok).toBe(true);
    });

    it('does not verify against an unrelated root with the same name', () => {
      const r = verify(otherRootPath, intermediatePath, leafPath);
      expect(r.ok).toBe(false);
      expect(r.out).toMatch(/signature failure|unable to get local issuer certificate/);
    });

    it('does not verify without the intermediate', () => {
      expect(verify(rootPath, undefined, leafPath).ok).toBe(false);
    });

    it('carries the expected extensions', () => {
      const exts = extensionsOf(leafPath, LEAF_EXTS);
      expect(ext(exts, 'Subject Alternative Name')).toEqual({
        critical: false,
        value: 'DNS:rampart.internal, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
      });
      expect(ext(exts, 'Key Usage')).toEqual({ critical: true, value: 'Digital Signature' });
      expect(ext(exts, 'Basic Constraints')).toEqual({ critical: true, value: 'CA:FALSE' });
      expect(ext(exts, 'Extended Key Usage').value).toBe('TLS Web Server Authentication, TLS Web Client Authentication');
      expect(leaf.subject).toBe('CN=rampart.internal');
    });

    it('takes its validity from the clock, backdated 60 s for skew', () => {
      const now = clock.now().getTime();
      expect(Math.floor((now - 60_000) / 1000) * 1000).toBe(leaf.notBefore.getTime());
      expect(Math.floor((now + DAY_MS) / 1000) * 1000).toBe(leaf.notAfter.getTime());
    });

    it('verifies with a bundle built by chainPem', () => {
      const bundle = write('bundle.pem', chainPem(leaf, intermediate.certificate));
      expect(verify(rootPath, bundle, leafPath, 'sslserver').ok).toBe(true);
      expect(chainPem(leaf, intermediate.certificate).match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    });
  });

  describe('X.509-SVID', () => {
    const spiffeId = parseSpiffeId('spiffe://rampart.test/ns/prod/sa/api').id;
    let svid: x509.X509Certificate;
    let svidPath: string;

    beforeAll(async () => {
      const keys = await generateKeyPair();
      svid = await issueSvid(intermediate, {
        publicKey: keys.publicKey,
        spiffeId,
        dnsNames: ['api.prod.svc'],
        clock,
        ttlMs: HOUR_MS,
        crlDistributionUrl: 'http://rampart.test/v1/pki/crl',
        ocspUrl: 'http://rampart.test/v1/pki/ocsp',
      });
      svidPath = write('svid.pem', chainPem(svid));
    });

    it('verifies through the intermediate for TLS server and client use', () => {
      expect(verify(rootPath, intermediatePath, svidPath).ok).toBe(true);
      expect(verify(rootPath, intermediatePath, svidPath, 'sslserver').ok).toBe(true);
      expect(verify(rootPath, intermediatePath, svidPath, 'sslclient').ok).toBe(true);
      expect(verify(otherRootPath, intermediatePath, svidPath).ok).toBe(false);
    });

    it('has an empty subject, so its SAN is critical (RFC 5280 §4.1.2.6)', () => {
      expect(svid.subject).toBe('');
      const exts = extensionsOf(svidPath, LEAF_EXTS);
      expect(ext(exts, 'Subject Alternative Name')).toEqual({
        critical: true,
        value: 'URI:spiffe://rampart.test/ns/prod/sa/api, DNS:api.prod.svc',
      });
      expect(ext(exts, 'Basic Constraints')).toEqual({ critical: true, value: 'CA:FALSE' });
      expect(ext(exts, 'Key Usage')).toEqual({ critical: true, value: 'Digital Signature' });
      expect(ext(exts, 'Extended Key Usage').value).toBe('TLS Web Server Authentication, TLS Web Client Authentication');
    });

    it('never has keyCertSign or cRLSign and has exactly one URI SAN', () => {
      const usages = keyUsageOf(svid);
      expect(usages & x509.KeyUsageFlags.keyCertSign).toBe(0);
      expect(usages & x509.KeyUsageFlags.cRLSign).toBe(0);
      expect(usages & x509.KeyUsageFlags.digitalSignature).not.toBe(0);
      expect(uriSans(svid)).toEqual([spiffeId]);
      expect(spiffeIdOf(svid)).toBe(spiffeId);
    });

    it('carries the CRL distribution point and OCSP responder', () => {
      const r = openssl('x509', '-in', svidPath, '-noout', '-ext', 'crlDistributionPoints,authorityInfoAccess');
      expect(r.ok, r.out).toBe(true);
      expect(r.out).toContain('URI:http://rampart.test/v1/pki/crl');
      expect(r.out).toMatch(/OCSP - URI:http:\/\/rampart\.test\/v1\/pki\/ocsp/);
    });

    it('with a common name, the SAN is not critical and the subject is the CN', async () => {
      const keys = await generateKeyPair();
      const named = await issueSvid(intermediate, { publicKey: keys.publicKey, spiffeId, commonName: 'api', clock, ttlMs: HOUR_MS });
      const path = write('svid-named.pem', chainPem(named));
      expect(named.subject).toBe('CN=api');
      expect(ext(extensionsOf(path, 'subjectAltName'), 'Subject Alternative Name')).toEqual({
        critical: false,
        value: 'URI:spiffe://rampart.test/ns/prod/sa/api',
      });
      expect(verify(rootPath, intermediatePath, path, 'sslclient').ok).toBe(true);
    });

    it('refuses a trust-domain-only ID and a forged brand', async () => {
      const keys = await generateKeyPair();
      const base = { publicKey: keys.publicKey, clock, ttlMs: HOUR_MS };
      for (const bad of ['spiffe://rampart.test', 'spiffe://rampart.test/a/../b', 'https://rampart.test/x']) {
        await expect(issueSvid(intermediate, { ...base, spiffeId: bad as SpiffeId })).rejects.toMatchObject({
          code: 'pki.spiffe_id_invalid',
        });
      }
    });
  });

  describe.each<KeyAlgorithm>(['ed25519', 'rsa-2048', 'rsa-3072'])('%s leaf under a P-256 chain', (alg) => {
    it('issues a server certificate and an SVID that openssl verifies', { timeout: 30_000 }, async () => {
      const keys = await generateKeyPair(alg);
      const server = await issueServerCertificate(intermediate, {
        publicKey: keys.publicKey,
        dnsNames: ['svc.internal'],
        ipAddresses: [],
        commonName: 'svc.internal',
        clock,
        ttlMs: HOUR_MS,
      });
      const svid = await issueSvid(intermediate, {
        publicKey: keys.publicKey,
        spiffeId: parseSpiffeId('spiffe://rampart.test/svc').id,
        clock,
        ttlMs: HOUR_MS,
      });
      for (const [name, cert] of [['server', server], ['svid', svid]] as const) {
        const path = write(`${alg}-${name}.pem`, chainPem(cert));
        expect(verify(rootPath, intermediatePath, path, 'sslserver').ok).toBe(true);
        expect(verify(rootPath, intermediatePath, path, 'sslclient').ok).toBe(true);
        expect(ext(extensionsOf(path, 'keyUsage'), 'Key Usage')).toEqual({ critical: true, value: 'Digital Signature' });
      }
    });
  });

  describe.each<KeyAlgorithm>(['ed25519', 'rsa-2048'])('%s root and intermediate', (alg) => {
    it('sign a chain that openssl verifies', { timeout: 30_000 }, async () => {
      const r = await createRootCa({ commonName: `Root ${alg}`, clock, algorithm: alg });
      const i = await createIntermediateCa(r, { commonName: `Issuing ${alg}`, clock, algorithm: alg });
      const keys = await generateKeyPair();
      const svid = await issueSvid(i, { publicKey: keys.publicKey, spiffeId: parseSpiffeId('spiffe://rampart.test/svc').id, clock, ttlMs: HOUR_MS });
      const rp = write(`${alg}-root.pem`, chainPem(r.certificate));
      const ip = write(`${alg}-intermediate.pem`, chainPem(i.certificate));
      const lp = write(`${alg}-chain-svid.pem`, chainPem(svid));
      expect(verify(rp, ip, lp, 'sslclient').ok).toBe(true);
      expect(verify(rootPath, ip, lp).ok).toBe(false);
    });
  });

  it('a CA reloaded from its PKCS #8 PEM keeps issuing verifiable certificates', async () => {
    const pem = await exportPrivateKeyPkcs8Pem(intermediate.privateKey);
    const keyPath = write('intermediate.key', pem);
    expect(openssl('pkey', '-in', keyPath, '-noout').ok).toBe(true);
    const reloaded: CertificateAuthority = {
      certificate: new x509.X509Certificate(intermediate.certificate.rawData),
      privateKey: await importPrivateKeyPkcs8Pem(pem, intermediate.algorithm),
      algorithm: intermediate.algorithm,
    };
    expect(reloaded.privateKey.extractable).toBe(false);
    const keys = await generateKeyPair();
    const svid = await issueSvid(reloaded, { publicKey: keys.publicKey, spiffeId: parseSpiffeId('spiffe://rampart.test/reloaded').id, clock, ttlMs: HOUR_MS });
    expect(verify(rootPath, intermediatePath, write('reloaded.pem', chainPem(svid))).ok).toBe(true);
  });
});

describe('validity windows come from the injected clock', () => {
  const start = Date.UTC(2030, 5, 1, 12, 0, 0);

  it('root validity starts 60 s before now and lasts validityDays', async () => {
    const clock = new ManualClock(start);
    const root = await createRootCa({ commonName: 'Root', clock, validityDays: 10 });
    expect(root.certificate.notBefore.getTime()).toBe(start - 60_000);
    expect(root.certificate.notAfter.getTime()).toBe(start + 10 * DAY_MS);
  });

  it('an intermediate never outlives its parent', async () => {
    const clock = new ManualClock(start);
    const root = await createRootCa({ commonName: 'Root', clock, validityDays: 30 });
    clock.advance(DAY_MS);
    const intermediate = await createIntermediateCa(root, { commonName: 'Issuing', clock, validityDays: 365 });
    expect(intermediate.certificate.notAfter.getTime()).toBe(root.certificate.notAfter.getTime());
    expect(intermediate.certificate.notBefore.getTime()).toBe(start + DAY_MS - 60_000);
  });

  it('a leaf never outlives its issuer', async () => {
    const clock = new ManualClock(start);
    const root = await createRootCa({ commonName: 'Root', clock, validityDays: 2 });
    const intermediate = await createIntermediateCa(root, { commonName: 'Issuing', clock, validityDays: 1 });
    clock.advance(23 * HOUR_MS);
    const keys = await generateKeyPair();
    const leaf = await issueServerCertificate(intermediate, {
      publicKey: keys.publicKey,
      dnsNames: ['a.internal'],
      ipAddresses: [],
      commonName: 'a',
      clock,
      ttlMs: 7 * DAY_MS,
    });
    expect(leaf.notAfter.getTime()).toBe(intermediate.certificate.notAfter.getTime());
    const svid = await issueSvid(intermediate, { publicKey: keys.publicKey, spiffeId: parseSpiffeId('spiffe://t/a').id, clock, ttlMs: 7 * DAY_MS });
    expect(svid.notAfter.getTime()).toBe(intermediate.certificate.notAfter.getTime());
  });

  it('an expired or not-yet-valid issuer is unavailable', async () => {
    const clock = new ManualClock(start);
    const root = await createRootCa({ commonName: 'Root', clock, validityDays: 1 });
    const keys = await generateKeyPair();
    const issue = () => issueSvid(root, { publicKey: keys.publicKey, spiffeId: parseSpiffeId('spiffe://t/a').id, clock, ttlMs: HOUR_MS });
    clock.advance(DAY_MS);
    await expect(issue()).rejects.toBeInstanceOf(PkiError);
    await expect(issue()).rejects.toMatchObject({ code: 'pki.ca_unavailable' });
    clock.set(new Date(start - HOUR_MS));
    await expect(issue()).rejects.toMatchObject({ code: 'pki.ca_unavailable' });
    await expect(createIntermediateCa(root, { commonName: 'I', clock })).rejects.toMatchObject({ code: 'pki.ca_unavailable' });
  });
});

describe('input checks', () => {
  const clock = new ManualClock();
  let root: CertificateAuthority;
  let publicKey: CryptoKeyLike;
  type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>['publicKey'];

  beforeAll(async () => {
    root = await createRootCa({ commonName: 'Root', clock });
    publicKey = (await generateKeyPair()).publicKey;
  });

  const server = (over: Partial<Parameters<typeof issueServerCertificate>[1]>) =>
    issueServerCertificate(root, { publicKey, dnsNames: ['a.internal'], ipAddresses: [], commonName: 'a', clock, ttlMs: HOUR_MS, ...over });

  it('refuses malformed SANs, an empty SAN list, a private key and a bad TTL', async () => {
    await expect(server({ dnsNames: [], ipAddresses: [] })).rejects.toThrow(RangeError);
    await expect(server({ ipAddresses: ['::ffff:1.2.3.4'] })).rejects.toThrow(/IP address/);
    await expect(server({ ipAddresses: ['300.1.1.1'] })).rejects.toThrow(/IP address/);
    await expect(server({ dnsNames: ['bad name'] })).rejects.toThrow(/DNS name/);
    await expect(server({ dnsNames: ['ex\u00e4mple.org'] })).rejects.toThrow(/DNS name/);
    await expect(server({ ttlMs: 0 })).rejects.toThrow(/ttlMs/);
    await expect(server({ commonName: 'x'.repeat(65) })).rejects.toThrow(/commonName/);
    await expect(server({ publicKey: root.privateKey })).rejects.toThrow(TypeError);
  });

  it('accepts wildcard DNS names and plain IPv6', async () => {
    const cert = await server({ dnsNames: ['*.svc.internal'], ipAddresses: ['fd00::1'] });
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON();
    expect(names).toEqual([
      { type: 'dns', value: '*.svc.internal' },
      { type: 'ip', value: 'fd00::1' },
    ]);
  });

  it('refuses non-http CRL and OCSP URLs', async () => {
    const spiffeId = parseSpiffeId('spiffe://t/a').id;
    await expect(issueSvid(root, { publicKey, spiffeId, clock, ttlMs: HOUR_MS, crlDistributionUrl: 'ldap://x' })).rejects.toThrow(/http/);
    await expect(issueSvid(root, { publicKey, spiffeId, clock, ttlMs: HOUR_MS, ocspUrl: 'not a url' })).rejects.toThrow(/URL/);
  });

  it('a stored key of the wrong algorithm makes the CA unavailable', async () => {
    const pem = await exportPrivateKeyPkcs8Pem(root.privateKey);
    await expect(importPrivateKeyPkcs8Pem(pem, 'ed25519')).rejects.toMatchObject({ code: 'pki.ca_unavailable' });
    await expect(importPrivateKeyPkcs8Pem('garbage', 'ecdsa-p256')).rejects.toMatchObject({ code: 'pki.ca_unavailable' });
    const rsa = await generateKeyPair('rsa-2048');
    await expect(importPrivateKeyPkcs8Pem(await exportPrivateKeyPkcs8Pem(rsa.privateKey), 'rsa-3072')).rejects.toMatchObject({
      code: 'pki.ca_unavailable',
    });
  });
});
