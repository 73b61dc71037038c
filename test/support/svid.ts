import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { SvidMaterial } from '../../src/sdk/index.js';
import { makeCsr } from './pki.js';
import type { TestServer } from './server.js';

/** The trust bundle the server publishes now. */
export async function bundleOf(s: TestServer): Promise<string> {
  return (await s.app.inject({ method: 'GET', url: '/v1/pki/ca/pem' })).body;
}

/** A fresh SVID for `id` from the server's current intermediate, with the current bundle. */
export async function svidFrom(s: TestServer, id: string): Promise<SvidMaterial & { serial: string }> {
  const csr = await makeCsr();
  const r: LightMyRequestResponse = await s.app.inject({ method: 'POST', url: '/v1/pki/sign', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { csr: csr.pem, spiffe_id: id, ttl: '1h' } });
  expect(r.statusCode, r.body).toBe(200);
  const body = r.json() as { certificate: string; issuing_ca: string; serial_number: string };
  return { svidPem: `${body.certificate.trim()}\n${body.issuing_ca.trim()}\n`, keyPem: csr.keyPem, bundlePem: await bundleOf(s), serial: body.serial_number };
}

/** Revokes a certificate through the API, as the admin. */
export async function revokeSerial(s: TestServer, serial: string): Promise<void> {
  const r = await s.app.inject({ method: 'POST', url: '/v1/pki/revoke', headers: { authorization: `Bearer ${s.adminToken}` }, payload: { serial_number: serial } });
  expect(r.statusCode, r.body).toBe(200);
}
