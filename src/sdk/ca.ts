/**
 * CA management over the API (docs/pki.md, "Rotation" and "Root offline"): status, rotation and
 * the root key's export, removal and import. Operator-only: the token must be an admin of the
 * `default` tenant. Functions over a {@link RampartClient}, like policies.ts.
 */
import type { RampartClient } from './client.js';

/** One CA certificate and where it is in its rotation. */
export interface CaAuthority {
  readonly id: string;
  readonly role: 'root' | 'intermediate' | 'cross';
  /** `prepared`: in the bundle, not signing yet; `previous`: still validating its leaves. */
  readonly status: 'requested' | 'prepared' | 'active' | 'previous' | 'retired';
  readonly subject: string;
  readonly issuer: string;
  /** Hex subject key identifier; the CRL of an intermediate is at `/v1/pki/issuers/<key_id>/crl`. */
  readonly key_id: string;
  readonly not_after: string;
  readonly key_online: boolean;
  readonly activate_after: string | null;
}

export interface CaStatus {
  /** The trust bundle's `spiffe_sequence`. */
  readonly bundle_sequence: number;
  readonly authorities: readonly CaAuthority[];
}

export interface RotateCaRequest {
  /** `root` creates a new root cross-signed by the current one; default `intermediate`. */
  readonly target?: 'intermediate' | 'root';
  /** How long the new intermediate is only published before it signs, e.g. `"10m"` (the default); `"0s"` for at once. */
  readonly propagationDelay?: string;
}

/**
 * The CA hierarchy with every unretired certificate's rotation state.
 *
 * @example
 * ```ts
 * const { authorities } = await getCaStatus(client);
 * ```
 */
export function getCaStatus(client: RampartClient): Promise<CaStatus> {
  return client.request<CaStatus>('GET', '/v1/pki/ca/status');
}

/**
 * Prepares a rotation: the new intermediate is published in the bundle and starts signing after
 * the propagation delay (or on {@link activateCa}).
 *
 * @example
 * ```ts
 * await rotateCa(client, { target: 'intermediate', propagationDelay: '10m' });
 * ```
 */
export function rotateCa(client: RampartClient, request: RotateCaRequest = {}): Promise<CaStatus> {
  const body: Record<string, string> = {};
  if (request.target !== undefined) body.target = request.target;
  if (request.propagationDelay !== undefined) body.propagation_delay = request.propagationDelay;
  return client.request<CaStatus>('POST', '/v1/pki/ca/rotate', { body });
}

/**
 * Activates the prepared intermediate now.
 *
 * @example
 * ```ts
 * await activateCa(client);
 * ```
 */
export function activateCa(client: RampartClient): Promise<CaStatus> {
  return client.request<CaStatus>('POST', '/v1/pki/ca/activate');
}

export interface ExportedRootKey {
  readonly root_id: string;
  readonly certificate: string;
  /** PEM `ENCRYPTED PRIVATE KEY` (PKCS #8, AES-256-CBC under the passphrase). */
  readonly encrypted_key: string;
}

/**
 * Exports the root key encrypted under `passphrase` (at least 16 characters).
 *
 * @example
 * ```ts
 * const { root_id, encrypted_key } = await exportRootKey(client, passphrase);
 * ```
 */
export function exportRootKey(client: RampartClient, passphrase: string): Promise<ExportedRootKey> {
  return client.request<ExportedRootKey>('POST', '/v1/pki/ca/root/export', { body: { passphrase } });
}

/**
 * Deletes root `rootId`'s key from the server; the root stays trusted.
 *
 * @example
 * ```ts
 * await removeRootKey(client, root_id);
 * ```
 */
export function removeRootKey(client: RampartClient, rootId: string): Promise<{ root_id: string; key_online: boolean }> {
  return client.request('POST', '/v1/pki/ca/root/remove', { body: { root_id: rootId } });
}

/**
 * Puts an exported root key back on the server (for a rotation).
 *
 * @example
 * ```ts
 * await importRootKey(client, readFileSync('root.p8.enc', 'utf8'), passphrase);
 * ```
 */
export function importRootKey(client: RampartClient, encryptedKey: string, passphrase: string): Promise<{ root_id: string; key_online: boolean }> {
  return client.request('POST', '/v1/pki/ca/root/import', { body: { encrypted_key: encryptedKey, passphrase } });
}

/**
 * Creates the next intermediate's key on the server and returns its CSR, for a root held
 * elsewhere to sign.
 *
 * @example
 * ```ts
 * const { csr } = await requestIntermediateCsr(client);
 * ```
 */
export function requestIntermediateCsr(client: RampartClient): Promise<{ id: string; csr: string }> {
  return client.request('POST', '/v1/pki/ca/intermediate/csr');
}

export interface SetSignedIntermediateRequest {
  /** PEM of the intermediate the root signed from {@link requestIntermediateCsr}'s CSR. */
  readonly certificate: string;
  /** PEM of the signing root, when the server does not have it yet (an external root). */
  readonly root?: string;
  readonly propagationDelay?: string;
}

/**
 * Installs the externally signed intermediate as prepared.
 *
 * @example
 * ```ts
 * await setSignedIntermediate(client, { certificate: readFileSync('intermediate.pem', 'utf8'), propagationDelay: '10m' });
 * ```
 */
export function setSignedIntermediate(client: RampartClient, request: SetSignedIntermediateRequest): Promise<CaStatus> {
  const body: Record<string, string> = { certificate: request.certificate };
  if (request.root !== undefined) body.root = request.root;
  if (request.propagationDelay !== undefined) body.propagation_delay = request.propagationDelay;
  return client.request<CaStatus>('POST', '/v1/pki/ca/intermediate/set-signed', { body });
}
