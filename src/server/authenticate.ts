import 'reflect-metadata';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import { AuthError, isRampartError } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import type { TenantStore, TokenRecord, TokenStore } from '../identity/store.js';
import { authenticateToken } from '../identity/tokens.js';
import { canonicalSerial } from '../pki/issuer.js';
import { parseSpiffeId, spiffeIdOf } from '../pki/spiffe.js';
import type { CertificateStore } from '../pki/store.js';

export interface AuthenticationDeps {
  readonly tokens: TokenStore;
  readonly tenants: TenantStore;
  readonly certificates: CertificateStore;
  readonly clock: Clock;
}

/**
 * Establishes who is calling, from the TLS client certificate or a bearer token.
 *
 * A client certificate, when presented at all, must chain to this control plane's roots — a
 * certificate from another CA is refused even if a valid token accompanies it, because a peer
 * presenting a foreign identity is something an operator wants to see, not to have silently
 * ignored. With a trusted certificate and no token, the principal is the workload named by the
 * certificate's SPIFFE ID (X509-SVID §2: exactly one URI SAN), in the tenant that owns its trust
 * domain. Otherwise `Authorization: Bearer` or Vault's `X-Vault-Token` header carries a token.
 */
export interface Authenticated {
  readonly principal: Principal;
  /** The token record when a token authenticated the request (handlers reuse it, no second read). */
  readonly token?: TokenRecord;
}

export async function authenticate(req: FastifyRequest, deps: AuthenticationDeps): Promise<Authenticated> {
  const peer = peerOf(req.raw.socket as Partial<TLSSocket>);
  if (peer.error) throw peer.error;
  const cert = peer.cert;
  // A revoked certificate is refused whatever else comes with it, like a foreign one; checked
  // on every request, so a revocation applies to connections already open.
  if (cert) await refuseRevoked(cert, deps.certificates);
  const token = bearerToken(req);
  if (token !== undefined) {
    const { principal, record } = await authenticateToken(deps.tokens, deps.clock, token, req.ip);
    return { principal, token: record };
  }
  if (cert) return { principal: await workloadPrincipal(cert, deps) };
  throw new AuthError('auth.missing_credentials', 'present a bearer token (Authorization: Bearer or X-Vault-Token) or a client certificate');
}

/** What the TLS handshake established about the client: its parsed certificate, or why it is refused. */
interface Peer {
  readonly cert: x509.X509Certificate | undefined;
  readonly error: AuthError | undefined;
}

const NO_PEER: Peer = { cert: undefined, error: undefined };

/**
 * The peer of a connection is fixed by its handshake (TLS 1.3 has no renegotiation, and Node
 * offers no post-handshake authentication), so it is read and parsed once per connection, not
 * once per request on it.
 */
const peers = new WeakMap<object, Peer>();

function peerOf(socket: Partial<TLSSocket>): Peer {
  let peer = peers.get(socket);
  if (!peer) {
    peer = readPeer(socket);
    peers.set(socket, peer);
  }
  return peer;
}

/** Whether the connection presented a client certificate at all, trusted or not (authentication refuses an untrusted one). */
export function presentsClientCertificate(req: FastifyRequest): boolean {
  const peer = peerOf(req.raw.socket as Partial<TLSSocket>);
  return peer.cert !== undefined || peer.error !== undefined;
}

function readPeer(socket: Partial<TLSSocket>): Peer {
  const presented = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
  if (presented === undefined || presented === null || Object.keys(presented).length === 0) return NO_PEER;
  if (!socket.authorized) {
    const why = `the client certificate does not chain to this control plane's CA (${String(socket.authorizationError ?? 'unknown')})`;
    return { cert: undefined, error: new AuthError('auth.client_cert_untrusted', why) };
  }
  try {
    return { cert: parseClientCertificate(presented.raw), error: undefined };
  } catch (err) {
    return { cert: undefined, error: err as AuthError };
  }
}

/** The chain already verified; a certificate our parser cannot read still carries no identity. */
function parseClientCertificate(raw: Buffer): x509.X509Certificate {
  try {
    return new x509.X509Certificate(raw);
  } catch (err) {
    throw new AuthError('auth.client_cert_invalid', 'the client certificate cannot be parsed', { cause: err });
  }
}

/**
 * The token a request presents, not yet verified: `Authorization: Bearer` first, then Vault's
 * `X-Vault-Token`. Every reader of request credentials uses this one precedence, so that what
 * authenticates a request and what a handler takes for the caller's token cannot differ.
 */
export function bearerToken(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length > 0) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m) throw new AuthError('auth.token_invalid', 'the Authorization header must be "Bearer <token>"');
    return m[1];
  }
  const vault = req.headers['x-vault-token'];
  if (typeof vault === 'string' && vault.length > 0) return vault;
  return undefined;
}

async function workloadPrincipal(cert: x509.X509Certificate, deps: AuthenticationDeps): Promise<Principal> {
  let spiffeId: string;
  try {
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
    if (eku && !eku.usages.includes(x509.ExtendedKeyUsage.clientAuth)) {
      throw new AuthError('auth.client_cert_invalid', 'the client certificate is not valid for client authentication');
    }
    spiffeId = spiffeIdOf(cert);
  } catch (err) {
    if (isRampartError(err) && err.code.startsWith('auth.')) throw err;
    throw new AuthError('auth.client_cert_invalid', 'the client certificate carries no valid SPIFFE ID', { cause: err });
  }
  const { trustDomain } = parseSpiffeId(spiffeId);
  const tenant = await deps.tenants.getByTrustDomain(trustDomain);
  if (!tenant) throw new AuthError('auth.client_cert_invalid', `no tenant owns the trust domain ${trustDomain}`);
  return { type: 'Rampart::Workload', id: spiffeId, tenant: tenant.name, roles: [], authMethod: 'mtls', displayName: spiffeId };
}

/**
 * Revocation, with CRL semantics (RFC 5280 §6.3): a certificate this control plane issued and
 * recorded as revoked is refused at once, not when it expires; one it has no record of revoked
 * stands on its verified chain. The lookup is by the issuer's key id (the leaf's AKI) and the
 * serial, exactly as an OCSP request names a certificate.
 */
async function refuseRevoked(cert: x509.X509Certificate, certificates: CertificateStore): Promise<void> {
  const aki = cert.getExtension('2.5.29.35');
  const serial = canonicalSerial(cert.serialNumber);
  if (!aki || !serial) throw new AuthError('auth.client_cert_invalid', 'the client certificate names no issuer key or serial');
  const issuer = new x509.AuthorityKeyIdentifierExtension(aki.rawData).keyId?.toLowerCase();
  if (!issuer) throw new AuthError('auth.client_cert_invalid', 'the client certificate names no issuer key');
  const record = await certificates.byIssuer(issuer, serial);
  if (record?.revokedAt) throw new AuthError('auth.client_cert_revoked', 'the client certificate has been revoked');
}
