import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalSerial } from '../../src/pki/issuer.js';
import { makeCsr, svidShape } from '../support/pki.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { runCli } from '../support/cli.js';

/** `rampart pki sign|revoke|crl` against a real server over HTTPS, run in-process like bin/rampart.js. */

const run = runCli;

describe('rampart pki', () => {
  let s: TestServer;
  let dir: string;
  const id = 'spiffe://default.rampart.local/ns/cli/sa/tool';
  const conn = () => ['--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle, '--token', s.adminToken];
  const f = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    s = await startTestServer({ listen: true });
    dir = mkdtempSync(path.join(tmpdir(), 'rampart-cli-pki-'));
    writeFileSync(f('csr.pem'), (await makeCsr()).pem);
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs a CSR, revokes the certificate by serial, and downloads a CRL that lists it', async () => {
    const signed = await run('pki', 'sign', '--csr', f('csr.pem'), '--spiffe-id', id, '--ttl', '10m', '--out', f('svid.pem'), '--chain-out', f('chain.pem'), ...conn());
    expect(signed.code, signed.stderr).toBe(0);
    const shape = svidShape(readFileSync(f('svid.pem'), 'utf8'));
    expect(shape.uris).toEqual([id]);
    const chain = readFileSync(f('chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----/g);
    expect(chain).toHaveLength(2);
    const serial = /serial_number\s+([0-9a-f]+)/.exec(signed.stdout)![1]!;
    expect(serial).toBe(canonicalSerial(shape.cert.serialNumber));

    const revoked = await run('pki', 'revoke', '--serial', serial, '--reason', 'superseded', '--format', 'json', ...conn());
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ serial_numbers: [serial], newly_revoked: [serial] });

    // The CRL is public: no token.
    const crl = await run('pki', 'crl', '--out', f('crl.pem'), '--addr', s.addr!, '--ca-file', s.runtime.files.trustBundle);
    expect(crl.code, crl.stderr).toBe(0);
    const parsed = new x509.X509Crl(readFileSync(f('crl.pem'), 'utf8'));
    expect(parsed.entries.map((e) => canonicalSerial(e.serialNumber))).toEqual([serial]);
  });

  it('refuses revoke without a target, an unknown reason, and reports server refusals with their code', async () => {
    expect((await run('pki', 'revoke', ...conn())).code).toBe(1);
    expect((await run('pki', 'revoke', '--serial', '01', '--reason', 'certificateHold', ...conn())).code).toBe(1);
    const missing = await run('pki', 'revoke', '--serial', '01', ...conn());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('(pki.certificate_not_found)');
    const tooLong = await run('pki', 'sign', '--csr', f('csr.pem'), '--spiffe-id', id, '--ttl', '48h', ...conn());
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain('(pki.ttl_invalid)');
  });
});
