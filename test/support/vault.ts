import { expect } from 'vitest';
import nodeVault from 'node-vault';
import type { TestServer } from './server.js';

/**
 * A node-vault client for a listening test server (`startTestServer({ listen: true })`), trusting
 * its CA. Lists go as node-vault sends them by default, with the `LIST` method
 * (src/server/vault/list-verb.ts); `listVerb: 'GET'` sends them as `GET …?list=1` instead
 * (node-vault's `noCustomHTTPVerbs`), as Vault's Go client sends them.
 */
export function vaultClient(server: TestServer, token: string = server.adminToken, namespace?: string, options: { listVerb?: 'LIST' | 'GET' } = {}): nodeVault.client {
  if (!server.addr) throw new Error('vaultClient needs startTestServer({ listen: true })');
  return nodeVault({
    apiVersion: 'v1',
    endpoint: server.addr,
    token,
    noCustomHTTPVerbs: options.listVerb === 'GET',
    ...(namespace ? { namespace } : {}),
    requestOptions: { ca: server.runtime.trustBundlePem },
  } as nodeVault.VaultOptions);
}

/** The status and body of a refused node-vault call (it rejects with ApiResponseError). */
export async function refusal(call: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  try {
    await call;
  } catch (err) {
    const response = (err as { response?: { statusCode: number; body: unknown } }).response;
    if (response) return { status: response.statusCode, body: response.body };
    throw err;
  }
  throw new Error('the call succeeded; a refusal was expected');
}

/** The newest audit event of the server's store, parsed. */
export async function lastAuditEvent(server: TestServer): Promise<Record<string, unknown>> {
  const row = await server.runtime.database.db.selectFrom('audit_events').select('payload').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
  return JSON.parse(row.payload) as Record<string, unknown>;
}

/** Expects a 400 whose body names `field`: a request field refused rather than ignored. */
export async function expectFieldRefused(call: Promise<unknown>, field: string): Promise<void> {
  const refused = await refusal(call);
  expect(refused.status, field).toBe(400);
  expect(JSON.stringify(refused.body), field).toContain(field);
}

/**
 * node-vault switches a client to every token it creates (`tokenSource` commands); these create
 * a token and keep the client on its own.
 */
export interface MintedToken {
  readonly auth: { client_token: string; accessor: string; policies: string[]; orphan: boolean; lease_duration: number; renewable: boolean };
}

export async function mint(client: nodeVault.client, args: Record<string, unknown>, orphan = false): Promise<MintedToken> {
  const own = client.token;
  try {
    return (await (orphan ? client.tokenCreateOrphan(args) : client.tokenCreate(args))) as MintedToken;
  } finally {
    client.token = own;
  }
}

/** {@link mint} against a token role (`auth/token/create/<role>`), keeping the client on its own token. */
export async function mintAgainstRole(client: nodeVault.client, role: string, args: Record<string, unknown> = {}): Promise<MintedToken> {
  const own = client.token;
  try {
    return (await client.tokenCreateRole({ role_name: role, ...args })) as MintedToken;
  } finally {
    client.token = own;
  }
}
