import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import * as pkijs from 'pkijs';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from '../src/audit/event.js';
import { resolveServerConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { CrlPublisher } from '../src/pki/crl.js';
import { issuerKeyId } from '../src/pki/issuer.js';
import { OcspResponder } from '../src/pki/ocsp.js';
import { generateKeyPair } from '../src/pki/keys.js';
import { parseSpiffeId } from '../src/pki/spiffe.js';
import { signSvidFromCsr } from '../src/pki/svid-signing.js';
import { startRuntime } from '../src/runtime.js';
import { type LoadTarget, type Quantile, keepAliveAgent, quantilesOf, runLoad } from './load.js';
import { emitter, note, positiveNumber, round } from './report.js';
import { listenHttps } from './listening.js';

/**
 * The PKI benchmark: CSR → SVID per second in-process (CSR check and signing alone, then with the
 * certificate row and its audit event committed, from as many callers as the HTTPS case) and over HTTPS through the whole request path; OCSP
 * answers per second in-process and over HTTPS (GET form, the request in the path); and how long one CRL build takes with
 * 100,000 revoked, unexpired certificates in the store (rows inserted directly). One JSON line
 * per figure on stdout; notes on stderr.
 *
 *   npx tsx bench/pki.ts
 *   BENCH_SECONDS=3 BENCH_CONCURRENCY=16 BENCH_CRL_ENTRIES=100000 npx tsx bench/pki.ts
 */

const BENCH = 'pki';
const seconds = positiveNumber('BENCH_SECONDS', 5);
const concurrency = Math.round(positiveNumber('BENCH_CONCURRENCY', 16));
const crlEntries = Math.round(positiveNumber('BENCH_CRL_ENTRIES', 100_000));

const emit = emitter(BENCH);

function emitRate(name: string, count: number, elapsedMs: number, latency: Quantile, errors: number): void {
  emit({ case: name, metric: 'throughput', value: round((count / elapsedMs) * 1000, 1), unit: 'ops/s' });
  emit({ case: name, metric: 'p50', value: round(latency(0.5), 3), unit: 'ms' });
  emit({ case: name, metric: 'p99', value: round(latency(0.99), 3), unit: 'ms' });
  emit({ case: name, metric: 'errors', value: errors, unit: 'count' });
}

async function main(): Promise<void> {
  emit({ metric: 'env', value: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', store: 'sqlite', seconds, concurrency, crl_entries: crlEntries } });
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-pki-'));
  const config = resolveServerConfig({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent' }, {});
  const runtime = await startRuntime(config, { logger: createLogger({ level: 'silent' }) });
  const { app, base } = await listenHttps(runtime);
  const agent = keepAliveAgent({ concurrency, ca: runtime.trustBundlePem });
  const adminToken = readFileSync(runtime.files.adminToken, 'utf8').trim();
  try {
    const keys = await generateKeyPair('ecdsa-p256');
    const csr = (await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } })).toString('pem');
    const spiffeId = parseSpiffeId('spiffe://default.rampart.local/ns/bench/sa/api').id;
    const issuer = runtime.ca.intermediate;

    // 1a. In-process, crypto only: CSR parse and self-signature check, key import, signing.
    {
      const latencies: number[] = [];
      const started = performance.now();
      while (performance.now() - started < seconds * 1000) {
        const t = performance.now();
        await signSvidFromCsr(issuer, { tenant: 'default', spiffeId, csrPem: csr, ttlMs: 3_600_000, clock: runtime.clock, advertiseAddr: config.advertiseAddr });
        latencies.push(performance.now() - t);
      }
      emitRate('sign-crypto', latencies.length, performance.now() - started, quantilesOf(Float64Array.from(latencies).sort()), 0);
    }

    // 1b. In-process, as the route does it: sign, then one transaction with the certificate row
    //     and its audit event, from `concurrency` callers at once (the HTTPS case's load), so
    //     transactions are group-committed as they are under the route (src/store/group-commit.ts).
    {
      const latencies: number[] = [];
      const event = (serial: string): AuditEvent => ({
        schema_version: AUDIT_SCHEMA_VERSION,
        time: runtime.clock.now().toISOString(),
        tenant: 'default',
        request_id: 'bench',
        source_ip: '127.0.0.1',
        principal: null,
        action: 'pki:sign',
        resource: { type: 'Rampart::SpiffeId', id: spiffeId },
        outcome: 'success',
        authorization: null,
        error_code: null,
        http: null,
        details: { serial_number: serial },
      });
      const cpu = process.cpuUsage();
      const started = performance.now();
      const worker = async () => {
        while (performance.now() - started < seconds * 1000) {
          const t = performance.now();
          const signed = await signSvidFromCsr(issuer, { tenant: 'default', spiffeId, csrPem: csr, ttlMs: 3_600_000, clock: runtime.clock, advertiseAddr: config.advertiseAddr });
          await runtime.transact(async (s) => {
            await s.certificates.insert(signed.record);
            await s.audit.insert([runtime.audit.rowFor(event(signed.record.serialNumber))]);
          });
          latencies.push(performance.now() - t);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const used = process.cpuUsage(cpu);
      emitRate('sign-in-process', latencies.length, performance.now() - started, quantilesOf(Float64Array.from(latencies).sort()), 0);
      emit({ case: 'sign-in-process', metric: 'cpu_per_op', value: round((used.user + used.system) / 1000 / latencies.length, 3), unit: 'ms' });
      note(`  sign-in-process: ${latencies.length} SVIDs in ${seconds} s from ${concurrency} callers`);
    }

    // 2. Over HTTPS: authn, authz (twice: pki:sign-request and pki:sign), validation, signing, the row and its audit event.
    {
      const target: LoadTarget = {
        url: `${base}/v1/pki/sign`,
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ csr, spiffe_id: spiffeId, ttl: '1h' }),
      };
      await runLoad(agent, target, { concurrency, durationMs: 1000 });
      const r = await runLoad(agent, target, { concurrency, durationMs: seconds * 1000 });
      emitRate('sign-https', r.ok, r.elapsedMs, r.latencyMs, r.errors);
      // The server's thread when the load generator runs in a worker; else the whole process.
      emit({ case: 'sign-https', metric: 'cpu_per_op', value: round((r.mainThreadCpuMs ?? r.cpuMs) / r.requests, 3), unit: 'ms' });
      note(`  sign-https: ${r.requests} requests, statuses ${JSON.stringify(r.statuses)}`);
    }

    // 3. OCSP: in-process and over HTTPS (GET form, RFC 6960 A.1). Answers without a nonce are
    //    signed once and served from the cache until a revocation (one revision read per answer).
    {
      const signed = await signSvidFromCsr(issuer, { tenant: 'default', spiffeId, csrPem: csr, ttlMs: 3_600_000, clock: runtime.clock, advertiseAddr: config.advertiseAddr });
      await runtime.transact((s) => s.certificates.insert(signed.record));
      const request = new pkijs.OCSPRequest();
      await request.createForCertificate(pkijs.Certificate.fromBER(signed.certificate.rawData), { hashAlgorithm: 'SHA-1', issuerCertificate: pkijs.Certificate.fromBER(issuer.certificate.rawData) });
      const requestDer = new Uint8Array(request.toSchema(true).toBER());
      // In-process: the responder with its pre-signed answer cache, as the route uses it.
      {
        const issuerId = issuerKeyId(issuer);
        const responder = new OcspResponder(issuer, (serial) => runtime.stores.certificates.byIssuer(issuerId, serial), runtime.clock, () => runtime.stores.certificates.crlRevision(issuerId));
        const latencies: number[] = [];
        const started = performance.now();
        while (performance.now() - started < seconds * 1000) {
          const t = performance.now();
          await responder.respond(requestDer);
          latencies.push(performance.now() - t);
        }
        emitRate('ocsp-in-process', latencies.length, performance.now() - started, quantilesOf(Float64Array.from(latencies).sort()), 0);
      }
      const b64 = encodeURIComponent(Buffer.from(requestDer).toString('base64'));
      const target: LoadTarget = { url: `${base}/v1/pki/ocsp/${b64}`, method: 'GET' };
      await runLoad(agent, target, { concurrency, durationMs: 1000 });
      const r = await runLoad(agent, target, { concurrency, durationMs: seconds * 1000 });
      emitRate('ocsp-https', r.ok, r.elapsedMs, r.latencyMs, r.errors);
    }

    // 4. CRL build with `crlEntries` revoked, unexpired certificates.
    {
      const issuerId = issuerKeyId(issuer);
      const now = runtime.clock.now();
      const notAfter = new Date(now.getTime() + 86_400_000).toISOString();
      const at = now.toISOString();
      const insertStarted = performance.now();
      const BATCH = 2_000;
      for (let i = 0; i < crlEntries; i += BATCH) {
        const rows = Array.from({ length: Math.min(BATCH, crlEntries - i) }, (_, j) => ({
          serial_number: `7f${(i + j).toString(16).padStart(30, '0')}`,
          tenant: 'default',
          spiffe_id: spiffeId,
          issuer: issuerId,
          not_before: at,
          not_after: notAfter,
          certificate_pem: '-',
          issued_at: at,
          revoked_at: at,
          revocation_reason: (i + j) % 2 === 0 ? 'keyCompromise' : 'unspecified',
        }));
        await runtime.database.db.insertInto('pki_certificates').values(rows).execute();
      }
      await runtime.database.db.updateTable('pki_crl_state').set((eb) => ({ revision: eb('revision', '+', 1) })).where('issuer', '=', issuerId).execute();
      note(`  inserted ${crlEntries} revoked rows in ${((performance.now() - insertStarted) / 1000).toFixed(1)} s`);
      const publisher = new CrlPublisher(issuer, runtime.stores.certificates, runtime.clock);
      const queryStarted = performance.now();
      const entries = await runtime.stores.certificates.revokedUnexpired(issuerId, at);
      const queryMs = performance.now() - queryStarted;
      const buildStarted = performance.now();
      const crl = await publisher.current();
      const buildMs = performance.now() - buildStarted;
      const cachedStarted = performance.now();
      await publisher.current();
      const cachedMs = performance.now() - cachedStarted;
      emit({ case: 'crl-build', metric: 'entries', value: crl.entries, unit: 'count' });
      emit({ case: 'crl-build', metric: 'query', value: round(queryMs, 1), unit: 'ms' });
      emit({ case: 'crl-build', metric: 'build_total', value: round(buildMs, 1), unit: 'ms' });
      emit({ case: 'crl-build', metric: 'size', value: crl.der.byteLength, unit: 'bytes' });
      emit({ case: 'crl-build', metric: 'cached_fetch', value: round(cachedMs, 3), unit: 'ms' });
      if (entries.length < crlEntries) note(`!! expected at least ${crlEntries} entries, the store returned ${entries.length}`);
    }
  } finally {
    agent.destroy();
    await app.close();
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  note(`pki bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
