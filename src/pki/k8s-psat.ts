/**
 * Kubernetes projected service-account token (PSAT) node attestation, after SPIRE's `k8s_psat`
 * node attestor (spiffe.io, "Configuring SPIRE", k8s_psat): the agent runs in a pod and presents
 * the token the kubelet projected into it; the server verifies it against the cluster issuer's
 * keys, its audience and its validity period, and derives the node's selectors from the
 * `kubernetes.io` claims (Kubernetes "Service account tokens", bound token claims).
 *
 * The token comes from the network: everything in it is untrusted until `jwtVerify` accepted the
 * signature, and the issuer is only used to pick which attestor's keys to try.
 *
 * An attestor configured with an issuer alone finds its keys by OpenID Connect Discovery 1.0
 * (the Kubernetes API server serves it for service-account tokens: "Service account issuer
 * discovery"): `<issuer>/.well-known/openid-configuration` names the `jwks_uri`, and jose's
 * remote JWK Set caches the keys and refetches them when a token names a key it does not hold
 * (the issuer rotated its signing key). The document is reread daily in the background; a failed
 * reread keeps the last good one for up to 7 days (`discoveredKeys`).
 */
import { readFileSync } from 'node:fs';
import {
  type FetchImplementation,
  type JSONWebKeySet,
  type JWKSCacheInput,
  type JWTPayload,
  type JWTVerifyGetKey,
  type RemoteJWKSetOptions,
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwksCache,
  jwtVerify,
} from 'jose';
import { type Clock, systemClock } from '../core/clock.js';
import { PkiError } from '../core/errors.js';

/** How an attestor finds the issuer's keys: one of the three, or none to discover `jwks_uri` from the issuer (config `k8s_attestors`). */
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

export interface K8sAttestorOptions {
  /**
   * Fetches the discovery document and the JWK Set; default the global `fetch` (Node's CA store,
   * plus `NODE_EXTRA_CA_CERTS` for an issuer under a private CA).
   */
  readonly fetch?: FetchImplementation;
  /** Tests only: lets the issuer and `jwks_uri` be `http://127.0.0.1`; never set from configuration. */
  readonly allowLoopbackHttp?: boolean;
  /** How long a discovered `jwks_uri` is used before the document is read again; default 24 h. */
  readonly rediscoverAfterMs?: number;
  /** How long after the last good read a discovered `jwks_uri`, or a fetched JWK Set, is still used while rereads fail; default 7 days. */
  readonly maxStaleMs?: number;
  /** How long jose uses a fetched JWK Set before fetching it again; default jose's 10 minutes. */
  readonly jwksMaxAgeMs?: number;
  /** Least time between a failed read of the discovery document or JWK Set and the next; doubles per failure. Default 10 s. */
  readonly retryAfterMs?: number;
  /** Least time between two refetches of the JWK Set for unknown key ids; default jose's 30 s. */
  readonly jwksCooldownMs?: number;
  readonly clock?: Clock;
}

/** A token verification waits this long for the discovery document or the JWK Set. */
const FETCH_TIMEOUT_MS = 5_000;
/** A discovery document is a few hundred bytes; anything much larger is not one. */
const MAX_DISCOVERY_BYTES = 64 * 1024;
const DAY_MS = 86_400_000;
/** How long the last good discovery document and JWK Set stay in use while rereads fail. */
const MAX_STALE_MS = 7 * DAY_MS;
const MIN_RETRY_MS = 10_000;
/** The longest wait between reads while the issuer stays down: it is back in use within 5 minutes. */
const MAX_RETRY_MS = 300_000;

/**
 * Builds the key sources once, at start-up; a `jwks_file` is read now, so a bad path fails fast.
 * Discovery happens at the first token, so an issuer that is down at start-up delays nothing else.
 */
export function k8sAttestors(settings: readonly K8sAttestorSettings[], options: K8sAttestorOptions = {}): K8sAttestor[] {
  return settings.map((s) => {
    if (s.jwks) return { settings: s, keys: createLocalJWKSet(s.jwks) };
    if (s.jwksFile) return { settings: s, keys: createLocalJWKSet(JSON.parse(readFileSync(s.jwksFile, 'utf8')) as JSONWebKeySet) };
    if (s.jwksUri) return { settings: s, keys: remoteKeys(new URL(s.jwksUri), options) };
    if (s.issuer.startsWith('https://') || (options.allowLoopbackHttp && isLoopbackHttp(s.issuer))) return { settings: s, keys: discoveredKeys(s, options) };
    throw new RangeError(`k8s attestor ${s.cluster}: one of jwks, jwks_file, jwks_uri is required unless the issuer is an https:// URL to discover them from`);
  });
}

/**
 * The JWK Set at `url`, through jose's remote set (cached 10 minutes, refetched early for an
 * unknown key id). jose fails every token once its cache is older than that and a refetch fails;
 * here the keys of the last good fetch stay in use for up to `maxStaleMs` after it, and failed
 * fetches are retried only as the retry gate allows, so an issuer outage neither stops
 * attestation at once nor turns each unauthenticated request into a fetch. With no good fetch
 * yet, or past that bound, a token fails with `pki.kube_jwks_unavailable` (fail closed).
 */
function remoteKeys(url: URL, options: K8sAttestorOptions): JWTVerifyGetKey {
  const clock = options.clock ?? systemClock;
  const maxStale = options.maxStaleMs ?? MAX_STALE_MS;
  const cache: JWKSCacheInput = {};
  const jwks: RemoteJWKSetOptions = { timeoutDuration: FETCH_TIMEOUT_MS, [jwksCache]: cache };
  if (options.jwksCooldownMs !== undefined) jwks.cooldownDuration = options.jwksCooldownMs;
  if (options.jwksMaxAgeMs !== undefined) jwks.cacheMaxAge = options.jwksMaxAgeMs;
  if (options.fetch) jwks[customFetch] = options.fetch;
  const remote = createRemoteJWKSet(url, jwks);
  const gate = new RetryGate(options.retryAfterMs);
  // jose stamps its cache with Date.now(); staleness is measured on the injected clock instead.
  let fetched: { uat: number; at: number } | undefined;
  return async (header, token) => {
    const now = clock.now().getTime();
    const held = 'jwks' in cache && fetched && now < fetched.at + maxStale ? cache.jwks : undefined;
    if (!gate.open(now)) {
      if (held) return createLocalJWKSet(held)(header, token);
      throw gate.error;
    }
    try {
      const key = await remote(header, token);
      gate.succeeded();
      return key;
    } catch (err) {
      // Key selection failed against a set that was fetched: the token's fault, not the issuer's.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
      gate.failed(new PkiError('pki.kube_jwks_unavailable', `the JWK Set at ${url.href} could not be fetched`, { cause: err }), now);
      if (held) return createLocalJWKSet(held)(header, token);
      throw gate.error;
    } finally {
      if ('uat' in cache && cache.uat !== fetched?.uat) fetched = { uat: cache.uat, at: now };
    }
  };
}

/**
 * When the next read of a remote document may be tried after consecutive failures: `first` ms
 * after the first failure, doubling, at most `MAX_RETRY_MS`; `error` is the last failure's.
 */
class RetryGate {
  #failures = 0;
  #retryAt = 0;
  error: unknown;
  constructor(private readonly first = MIN_RETRY_MS) {}
  open(now: number): boolean {
    return now >= this.#retryAt;
  }
  failed(error: unknown, now: number): void {
    this.#failures += 1;
    this.error = error;
    this.#retryAt = now + Math.min(this.first * 2 ** (this.#failures - 1), MAX_RETRY_MS);
  }
  succeeded(): void {
    this.#failures = 0;
    this.#retryAt = 0;
    this.error = undefined;
  }
}

const isLoopbackHttp = (url: string): boolean => {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && u.hostname === '127.0.0.1';
  } catch {
    return false;
  }
};

/**
 * Keys found through the issuer's discovery document, which is read again after
 * `rediscoverAfterMs`, in the background: tokens keep verifying against the last good document's
 * keys meanwhile, so an issuer that is briefly down at rediscovery time stops nothing. Up to
 * `maxStaleMs` (7 days) after the last good read; past it, or when no read ever succeeded, a
 * token waits for a read and fails closed with its error. Failed reads are retried as the
 * `RetryGate` allows (10 s after the first failure, doubling, at most 5 minutes): while the issuer is
 * down, tokens inside that window fail with the last error (or use the last good keys) without a
 * fetch, so unauthenticated attestation requests cannot make the server hammer the issuer.
 */
function discoveredKeys(settings: K8sAttestorSettings, options: K8sAttestorOptions): JWTVerifyGetKey {
  const clock = options.clock ?? systemClock;
  const period = options.rediscoverAfterMs ?? DAY_MS;
  const maxStale = options.maxStaleMs ?? MAX_STALE_MS;
  const gate = new RetryGate(options.retryAfterMs);
  let good: { url: string; keys: JWTVerifyGetKey; at: number } | undefined;
  let discovering: Promise<void> | undefined;

  const discover = (): Promise<void> =>
    (discovering ??= discoverJwksUri(settings, options)
      .then(
        (url) => {
          // The same jwks_uri keeps its key set, and with it the keys already fetched.
          good = { url: url.href, keys: good?.url === url.href ? good.keys : remoteKeys(url, options), at: clock.now().getTime() };
          gate.succeeded();
        },
        (error: unknown) => gate.failed(error, clock.now().getTime()),
      )
      .finally(() => (discovering = undefined)));

  return async (header, token) => {
    const now = clock.now().getTime();
    if (good && now < good.at + period) return good.keys(header, token);
    if (good && now < good.at + maxStale) {
      if (gate.open(now)) void discover();
      return good.keys(header, token);
    }
    if (gate.open(now)) await discover();
    if (good && now < good.at + maxStale) return good.keys(header, token);
    throw gate.error;
  };
}

/** Reads `res`'s body as UTF-8, refusing it once more than `max` bytes arrived (whatever content-length said). */
async function readCapped(res: Response, max: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      size += chunk.value.byteLength;
      if (size > max) {
        await reader.cancel();
        throw new Error('the document is too large');
      }
      chunks.push(chunk.value);
    }
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
}

/**
 * Reads `<issuer>/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4) and returns
 * its `jwks_uri`. The document comes from the network: its `issuer` must equal the configured
 * one exactly (§4.3, which is what keeps one issuer from vouching for another's keys) and its
 * `jwks_uri` must be https.
 *
 * @throws PkiError `pki.kube_discovery_unavailable` when the document cannot be fetched or parsed,
 *   `pki.kube_discovery_invalid` when it names another issuer or an unacceptable `jwks_uri`
 */
async function discoverJwksUri(settings: K8sAttestorSettings, options: K8sAttestorOptions): Promise<URL> {
  const url = `${settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const unavailable = (why: string, cause?: unknown) => new PkiError('pki.kube_discovery_unavailable', `the discovery document of Kubernetes issuer ${settings.issuer} ${why}`, cause === undefined ? {} : { cause });
  let doc: unknown;
  try {
    // Redirects are not followed: the document must come from the issuer itself.
    const res = await (options.fetch ?? fetch)(url, { headers: new Headers({ accept: 'application/json' }), method: 'GET', redirect: 'manual', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > MAX_DISCOVERY_BYTES) {
      await res.body?.cancel();
      throw new Error('the document is too large');
    }
    doc = JSON.parse(await readCapped(res, MAX_DISCOVERY_BYTES));
  } catch (err) {
    throw unavailable('could not be fetched', err);
  }
  const { issuer, jwks_uri: jwksUri } = (typeof doc === 'object' && doc !== null ? doc : {}) as { issuer?: unknown; jwks_uri?: unknown };
  if (issuer !== settings.issuer) throw new PkiError('pki.kube_discovery_invalid', `the discovery document of Kubernetes issuer ${settings.issuer} names another issuer (OIDC Discovery §4.3)`);
  let keysUrl: URL;
  try {
    keysUrl = new URL(String(jwksUri));
  } catch (err) {
    throw new PkiError('pki.kube_discovery_invalid', `the discovery document of Kubernetes issuer ${settings.issuer} has no valid jwks_uri`, { cause: err });
  }
  if (typeof jwksUri !== 'string' || !(keysUrl.protocol === 'https:' || (options.allowLoopbackHttp && isLoopbackHttp(jwksUri)))) {
    throw new PkiError('pki.kube_discovery_invalid', `the discovery document of Kubernetes issuer ${settings.issuer} names a jwks_uri that is not https`);
  }
  return keysUrl;
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
 *   `pki.kube_token_audience_invalid`, `pki.kube_jwks_unavailable`, `pki.kube_discovery_unavailable`,
 *   `pki.kube_discovery_invalid`
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
  if (err instanceof PkiError) return err; // discovery's own codes
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
