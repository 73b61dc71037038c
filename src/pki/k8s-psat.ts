/**
 * Kubernetes projected service-account token (PSAT) node attestation, after SPIRE's `k8s_psat`
 * node attestor (spiffe.io, "Configuring SPIRE", k8s_psat): the agent runs in a pod and presents
 * the token the kubelet projected into it; the server verifies it against the cluster issuer's
 * keys, its audience and its validity period, and derives the node's selectors from the
 * `kubernetes.io` claims (Kubernetes "Service account tokens", bound token claims).
 *
 * The token comes from the network: everything in it is untrusted until `jwtVerify` accepted the
 * signature, and the issuer is only used to pick which attestor's keys to try.
 */
import { readFileSync } from 'node:fs';
import { type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { Clock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';

/** How an attestor finds the issuer's keys: exactly one of the three (config `k8s_attestors`). */
export interface K8sAttestorSettings {
  /** Names the cluster in agent SPIFFE IDs and the `k8s:cluster:` selector. */
  readonly cluster: string;
  /** The tenant whose agents this cluster's tokens attest. */
  readonly tenant: string;
  /** The `iss` of the cluster's service-account tokens. */
  readonly issuer: string;
  /** The audience the projected token was requested for. */
  readonly audience: string;
  readonly jwks: JSONWebKeySet | undefined;
  readonly jwksFile: string | undefined;
  readonly jwksUri: string | undefined;
}

export interface K8sAttestor {
  readonly settings: K8sAttestorSettings;
  readonly keys: JWTVerifyGetKey;
}

/**
 * Asymmetric JWS algorithms only: `none` and HMAC are refused before any key is tried, so a token
 * "signed" with the public key as an HMAC secret, or not at all, never verifies (RFC 8725 §2.1, §3.1).
 */
export const K8S_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Kubelet and API server clocks drift a little; a minute, as SPIRE allows. */
const CLOCK_TOLERANCE_S = 60;

/** Builds the key sources once, at start-up; a `jwks_file` is read now, so a bad path fails fast. */
export function k8sAttestors(settings: readonly K8sAttestorSettings[]): K8sAttestor[] {
  return settings.map((s) => {
    if (s.jwks) return { settings: s, keys: createLocalJWKSet(s.jwks) };
    if (s.jwksFile) return { settings: s, keys: createLocalJWKSet(JSON.parse(readFileSync(s.jwksFile, 'utf8')) as JSONWebKeySet) };
    if (s.jwksUri) return { settings: s, keys: createRemoteJWKSet(new URL(s.jwksUri)) };
    throw new RangeError(`k8s attestor ${s.cluster}: one of jwks, jwks_file, jwks_uri is required`);
  });
}

export interface K8sAttestation {
  readonly attestor: K8sAttestorSettings;
  /** The agent's SPIFFE ID path: `/rampart/agent/k8s_psat/<cluster>/<node name, or pod uid>`. */
  readonly agentPath: string;
  /** Node selectors: `k8s:cluster:`, `k8s:ns:`, `k8s:sa:<ns>/<sa>`, `k8s:pod-name:`, `k8s:pod-uid:`, and `k8s:node-name:` when bound to a node. */
  readonly selectors: readonly string[];
}

interface KubernetesClaims {
  namespace?: unknown;
  serviceaccount?: { name?: unknown; uid?: unknown };
  pod?: { name?: unknown; uid?: unknown };
  node?: { name?: unknown; uid?: unknown };
}

const SEGMENT = /^[A-Za-z0-9._-]{1,253}$/;

/**
 * Verifies a projected service-account token and returns what it proves.
 *
 * @throws PkiError `pki.kube_token_invalid`, `pki.kube_token_issuer_unknown`, `pki.kube_token_alg_forbidden`,
 *   `pki.kube_token_signature_invalid`, `pki.kube_token_expired`, `pki.kube_token_not_yet_valid`,
 *   `pki.kube_token_audience_invalid`, `pki.kube_jwks_unavailable`
 */
export async function attestK8sToken(attestors: readonly K8sAttestor[], token: string, clock: Clock): Promise<K8sAttestation> {
  let alg: unknown;
  let unverified: JWTPayload;
  try {
    alg = decodeProtectedHeader(token).alg;
    unverified = decodeJwt(token);
  } catch (err) {
    throw new PkiError('pki.kube_token_invalid', 'the Kubernetes token is not a compact JWT', { cause: err });
  }
  if (typeof alg !== 'string' || !K8S_TOKEN_ALGORITHMS.includes(alg)) {
    throw new PkiError('pki.kube_token_alg_forbidden', `the Kubernetes token's alg ${JSON.stringify(String(alg).slice(0, 16))} is not an accepted asymmetric algorithm`);
  }
  const attestor = attestors.find((a) => a.settings.issuer === unverified.iss);
  if (!attestor) throw new PkiError('pki.kube_token_issuer_unknown', 'no Kubernetes attestor is configured for the token issuer');
  const now = clock.now();
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, attestor.keys, {
      issuer: attestor.settings.issuer,
      audience: attestor.settings.audience,
      algorithms: K8S_TOKEN_ALGORITHMS,
      currentDate: now,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp'],
    }));
  } catch (err) {
    throw verificationError(err);
  }
  // jose checks iat only against a maximum age; a token issued in the future is not yet valid.
  if (typeof payload.iat === 'number' && payload.iat > now.getTime() / 1000 + CLOCK_TOLERANCE_S) {
    throw new PkiError('pki.kube_token_not_yet_valid', 'the Kubernetes token was issued in the future');
  }
  return { attestor: attestor.settings, ...nodeFacts(attestor.settings.cluster, payload) };
}

function verificationError(err: unknown): PkiError {
  if (err instanceof errors.JWTExpired) return new PkiError('pki.kube_token_expired', 'the Kubernetes token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return new PkiError('pki.kube_token_not_yet_valid', 'the Kubernetes token is not yet valid');
    if (err.claim === 'aud') return new PkiError('pki.kube_token_audience_invalid', 'the Kubernetes token was not issued for this server');
    if (err.claim === 'iss') return new PkiError('pki.kube_token_issuer_unknown', 'no Kubernetes attestor is configured for the token issuer');
    return new PkiError('pki.kube_token_invalid', `the Kubernetes token's ${err.claim} claim is not valid`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new PkiError('pki.kube_token_alg_forbidden', 'the Kubernetes token uses an algorithm that is not accepted');
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new PkiError('pki.kube_token_signature_invalid', 'the Kubernetes token signature does not verify');
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError)) {
    return new PkiError('pki.kube_jwks_unavailable', "the Kubernetes issuer's keys could not be fetched", { cause: err });
  }
  return new PkiError('pki.kube_token_invalid', 'the Kubernetes token is malformed', { cause: err });
}

function nodeFacts(cluster: string, payload: JWTPayload): Omit<K8sAttestation, 'attestor'> {
  const k8s = payload['kubernetes.io'] as KubernetesClaims | undefined;
  const text = (v: unknown): string | undefined => (typeof v === 'string' && SEGMENT.test(v) ? v : undefined);
  const ns = text(k8s?.namespace);
  const sa = text(k8s?.serviceaccount?.name);
  const podName = text(k8s?.pod?.name);
  const podUid = text(k8s?.pod?.uid);
  const nodeName = text(k8s?.node?.name);
  // A projected token is bound to a pod; a legacy or TokenRequest token without one proves no node.
  if (!ns || !sa || !podName || !podUid) {
    throw new PkiError('pki.kube_token_invalid', 'the Kubernetes token lacks the kubernetes.io namespace, service account or pod claims of a projected token');
  }
  const selectors = [`k8s:cluster:${cluster}`, `k8s:ns:${ns}`, `k8s:sa:${ns}/${sa}`, `k8s:pod-name:${podName}`, `k8s:pod-uid:${podUid}`];
  if (nodeName) selectors.push(`k8s:node-name:${nodeName}`);
  return { agentPath: `/rampart/agent/k8s_psat/${cluster}/${nodeName ?? podUid}`, selectors: selectors.sort() };
}
