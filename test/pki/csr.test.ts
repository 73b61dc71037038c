import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { PkiError } from '../../src/core/errors.js';
import { createRootCa, issueSvid, parseCsr } from '../../src/pki/ca.js';
import { type CryptoKeyPair, generateKeyPair, type KeyAlgorithm, signingAlgorithmFor } from '../../src/pki/keys.js';
import { parseSpiffeId, spiffeIdOf } from '../../src/pki/spiffe.js';
import { readSvidRequest } from '../../src/pki/svid-request.js';

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-csr-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A CSR made by the real `openssl req`, with a fresh key from `newkeyArgs`. */
function opensslCsr(...extraArgs: string[]): string {
  const out = join(dir, `req-${++counter}.pem`);
  const r = spawnSync(
    '/usr/bin/openssl',
    ['req', '-new', '-nodes', '-keyout', join(dir, `key-${counter}.pem`), '-subj', '/CN=workload', '-out', out, ...extraArgs],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return readFileSync(out, 'utf8');
}

async function libraryCsr(keys: CryptoKeyPair, signingAlgorithm: object): Promise<x509.Pkcs10CertificateRequest> {
  return x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=workload', keys, signingAlgorithm: signingAlgorithm as never });
}

function toPem(der: Uint8Array | ArrayBuffer): string {
  return x509.PemConverter.encode(der instanceof Uint8Array ? der : new Uint8Array(der), 'CERTIFICATE REQUEST');
}

async function expectCsrInvalid(pem: string, reason?: RegExp): Promise<void> {
  const outcome = await parseCsr(pem).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome, 'the CSR was accepted').toBeInstanceOf(PkiError);
  expect((outcome as PkiError).code).toBe(reason === UNSUPPORTED_KEY ? 'pki.key_unsupported' : 'pki.csr_invalid');
  if (reason) expect((outcome as PkiError).message).toMatch(reason);
}

const BAD_SIGNATURE = /signature does not verify/;
const UNSUPPORTED_KEY = /unsupported key type/;

async function spki(key: webcrypto.CryptoKey): Promise<string> {
  return Buffer.from(await webcrypto.subtle.exportKey('spki', key)).toString('hex');
}

describe('parseCsr accepts well-formed requests for supported keys', () => {
  it.each<KeyAlgorithm>(['ecdsa-p256', 'ed25519', 'rsa-2048', 'rsa-3072'])(
    '%s request made with @peculiar/x509',
    { timeout: 30_000 },
    async (alg) => {
      const keys = await generateKeyPair(alg);
      const csr = await libraryCsr(keys, signingAlgorithmFor(alg));
      const parsed = await parseCsr(csr.toString('pem'));
      expect(parsed.algorithm).toBe(alg);
      expect(Buffer.from(parsed.spki).toString('hex')).toBe(await spki(keys.publicKey));
    },
  );

  it.each<[KeyAlgorithm, string[]]>([
    ['ecdsa-p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['ed25519', ['-newkey', 'ed25519']],
    ['rsa-2048', ['-newkey', 'rsa:2048']],
    ['rsa-2048', ['-newkey', 'rsa:2048', '-sigopt', 'rsa_padding_mode:pss', '-sha384']],
  ])('%s request made with openssl req %j', async (alg, args) => {
    expect((await parseCsr(opensslCsr(...args))).algorithm).toBe(alg);
  });
});

describe('security regression: parseCsr rejects requests that must never reach the CA', () => {
  it('a CSR whose signature was tampered with (proof of possession fails)', async () => {
    const csr = await libraryCsr(await generateKeyPair(), signingAlgorithmFor('ecdsa-p256'));
    const der = new Uint8Array(csr.rawData);
    const tampered = der.slice();
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01;
    await expectCsrInvalid(toPem(tampered), BAD_SIGNATURE);
  });

  it('a CSR whose signed subject was altered after signing', async () => {
    const der = Buffer.from(x509.PemConverter.decodeFirst(opensslCsr('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256')));
    const at = der.indexOf('workload');
    expect(at).toBeGreaterThan(0);
    der.write('workloae', at);
    await expectCsrInvalid(toPem(der), BAD_SIGNATURE);
  });

  it("a CSR that carries someone else's public key under the requester's signature", async () => {
    const attacker = await generateKeyPair();
    const victim = await generateKeyPair();
    const der = Buffer.from((await libraryCsr(attacker, signingAlgorithmFor('ecdsa-p256'))).rawData);
    const attackerSpki = Buffer.from(await webcrypto.subtle.exportKey('spki', attacker.publicKey));
    const victimSpki = Buffer.from(await webcrypto.subtle.exportKey('spki', victim.publicKey));
    const at = der.indexOf(attackerSpki);
    expect(at).toBeGreaterThan(0);
    victimSpki.copy(der, at);
    await expectCsrInvalid(toPem(der), BAD_SIGNATURE);
  });

  it('a CSR whose signature is valid but whose DER has trailing bytes', async () => {
    const der = new Uint8Array((await libraryCsr(await generateKeyPair(), signingAlgorithmFor('ecdsa-p256'))).rawData);
    const padded = new Uint8Array(der.length + 4);
    padded.set(der);
    await expectCsrInvalid(toPem(padded), /not a PEM-encoded PKCS #10 request/);
  });

  it('a CSR for an unsupported curve (P-384), from WebCrypto and from openssl', async () => {
    const p384 = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const csr = await libraryCsr(p384, { name: 'ECDSA', hash: 'SHA-384' });
    expect(await csr.verify()).toBe(true);
    await expectCsrInvalid(csr.toString('pem'), UNSUPPORTED_KEY);
    await expectCsrInvalid(opensslCsr('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'), UNSUPPORTED_KEY);
  });

  it.each<[string, string[], RegExp]>([
    ['secp256k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], UNSUPPORTED_KEY],
    ['Ed448', ['-newkey', 'ed448'], UNSUPPORTED_KEY],
    ['RSA-1024', ['-newkey', 'rsa:1024'], UNSUPPORTED_KEY],
    ['an RSA-PSS-only key', ['-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048'], UNSUPPORTED_KEY],
    ['an RSA-2048 key signed with SHA-1', ['-newkey', 'rsa:2048', '-sha1'], /unsupported signature algorithm/],
  ])('a CSR with %s', async (_name, args, reason) => {
    await expectCsrInvalid(opensslCsr(...args), reason);
  });

  it.each([
    ['an empty string', ''],
    ['plain text', 'not a certificate request'],
    ['a PEM block of garbage', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'],
    ['a PEM block of invalid base64', '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n'],
    ['an oversized input', `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(70_000)}\n-----END CERTIFICATE REQUEST-----\n`],
  ])('garbage: %s', async (_name, pem) => {
    await expectCsrInvalid(pem);
  });

  it('garbage: base64 without PEM armour, a truncated PEM, two requests, a certificate', async () => {
    const keys = await generateKeyPair();
    const csr = await libraryCsr(keys, signingAlgorithmFor('ecdsa-p256'));
    const pem = csr.toString('pem');
    await expectCsrInvalid(csr.toString('base64'));
    await expectCsrInvalid(`${pem.slice(0, 200)}\n-----END CERTIFICATE REQUEST-----\n`);
    await expectCsrInvalid(`${pem}\n${pem}\n`);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=workload',
      keys,
      notBefore: new Date(Date.UTC(2026, 0, 1)),
      notAfter: new Date(Date.UTC(2026, 0, 2)),
    });
    await expectCsrInvalid(cert.toString('pem'));
    await expectCsrInvalid(cert.toString('pem').replace(/CERTIFICATE/g, 'CERTIFICATE REQUEST'));
  });

  it('a non-string input', async () => {
    await expectCsrInvalid(undefined as unknown as string);
  });
});

describe('security regression: what a CSR requests is refused, and never copied even where a caller skips the check', () => {
  const caRequest = () =>
    opensslCsr(
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-addext',
      'subjectAltName=URI:spiffe://evil.example/admin,DNS:evil.example',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );

  it('readSvidRequest refuses an openssl CSR asking for CA:TRUE, keyCertSign and another identity', async () => {
    await expect(readSvidRequest(caRequest())).rejects.toMatchObject({ code: 'pki.csr_requests_ca', details: { requested: ['cA=TRUE', 'keyCertSign', 'cRLSign'] } });
  });

  // Defence in depth: parseCsr returns only the key, and issueSvid writes every name and
  // extension itself, so even a caller that skipped readSvidRequest could not issue a CA.
  it('issueSvid over the bare key of that CSR still carries only what the server chose', async () => {
    const parsed = await parseCsr(caRequest());
    const clock = new ManualClock();
    const root = await createRootCa({ commonName: 'Root', clock });
    const spiffeId = parseSpiffeId('spiffe://rampart.test/ns/prod/sa/api').id;
    const svid = await issueSvid(root, { publicKey: parsed, spiffeId, clock, ttlMs: 3_600_000 });

    expect(spiffeIdOf(svid)).toBe(spiffeId);
    expect(svid.subject).toBe('');
    expect(svid.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()).toEqual([{ type: 'url', value: spiffeId }]);
    expect(svid.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(svid.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
  });

  it.each<[string, string[], string]>([
    ['two URI SANs', ['-addext', 'subjectAltName=URI:spiffe://rampart.test/a,URI:spiffe://rampart.test/b'], 'pki.csr_multiple_uris'],
    ['a URI SAN that is not a SPIFFE ID', ['-addext', 'subjectAltName=URI:https://bank.example/'], 'pki.spiffe_id_invalid'],
    ['an IP SAN', ['-addext', 'subjectAltName=IP:10.0.0.1'], 'pki.csr_san_not_allowed'],
    ['keyUsage cRLSign only', ['-addext', 'keyUsage=cRLSign'], 'pki.csr_requests_ca'],
  ])('readSvidRequest refuses an openssl CSR with %s', async (_name, args, code) => {
    await expect(readSvidRequest(opensslCsr('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', ...args))).rejects.toMatchObject({ code });
  });

  it('readSvidRequest accepts an openssl CSR with one SPIFFE URI, a DNS name and CA:FALSE', async () => {
    const r = await readSvidRequest(
      opensslCsr('-newkey', 'ed25519', '-addext', 'subjectAltName=URI:spiffe://rampart.test/ns/prod/sa/api,DNS:API.prod.example', '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature'),
    );
    expect({ spiffeId: r.spiffeId, dnsNames: r.dnsNames, algorithm: r.publicKey.algorithm }).toEqual({ spiffeId: 'spiffe://rampart.test/ns/prod/sa/api', dnsNames: ['api.prod.example'], algorithm: 'ed25519' });
  });
});
