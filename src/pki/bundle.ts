/**
 * The trust bundle in the two forms relying parties read: PEM (every trusted CA certificate) and
 * the SPIFFE bundle format (SPIFFE Trust Domain and Bundle §4): a JWK Set whose X.509 authorities
 * are keys with `use: "x509-svid"` and the CA certificate as the single `x5c` entry (§4.2.1),
 * with `spiffe_sequence` (§4.1.1, grows on every change) and `spiffe_refresh_hint` (§4.1.2).
 * Every trust domain of this server shares one hierarchy, hence one bundle.
 */
import 'reflect-metadata';
import { type JsonWebKey, X509Certificate } from 'node:crypto';
import type * as x509 from '@peculiar/x509';
import { chainPem } from './ca.js';

/**
 * Seconds between bundle fetches we ask of relying parties. A rotation waits twice this before
 * the new intermediate signs (rotation.ts DEFAULT_PROPAGATION_DELAY_MS).
 */
export const BUNDLE_REFRESH_HINT_SECONDS = 300;

export interface SpiffeBundle {
  readonly keys: readonly (JsonWebKey & { readonly use: 'x509-svid'; readonly x5c: readonly [string] })[];
  readonly spiffe_sequence: number;
  readonly spiffe_refresh_hint: number;
}

/** The SPIFFE bundle of `certificates` (in bundle order), at `sequence`. */
export function spiffeBundle(certificates: readonly x509.X509Certificate[], sequence: number): SpiffeBundle {
  return {
    keys: certificates.map((cert) => {
      const der = Buffer.from(cert.rawData);
      const jwk = new X509Certificate(der).publicKey.export({ format: 'jwk' });
      return { ...jwk, use: 'x509-svid' as const, x5c: [der.toString('base64')] as [string] };
    }),
    spiffe_sequence: sequence,
    spiffe_refresh_hint: BUNDLE_REFRESH_HINT_SECONDS,
  };
}

/** Both renderings of one bundle state, computed once per sequence number. */
export class BundleRenderer {
  #cached: { sequence: number; pem: string; jwks: SpiffeBundle } | undefined;

  render(certificates: readonly x509.X509Certificate[], sequence: number): { pem: string; jwks: SpiffeBundle } {
    if (this.#cached?.sequence !== sequence) this.#cached = { sequence, pem: chainPem(...certificates), jwks: spiffeBundle(certificates, sequence) };
    return this.#cached;
  }
}
