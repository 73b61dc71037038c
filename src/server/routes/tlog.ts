import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { EntityRef } from '../../audit/event.js';
import type { Hash } from '../../audit/merkle.js';
import { type ServedTile, ServedTiles } from '../../audit/served-tiles.js';
import { TILE_WIDTH, TileHashes, type TileRef, parseTilePath, tileWidthAt } from '../../audit/tiles.js';
import { storeTreeReader } from '../../audit/tree-reader.js';
import { AuditError, AuthzError, RequestError } from '../../core/errors.js';
import { DEFAULT_TENANT } from '../../core/ids.js';
import type { Runtime } from '../../runtime.js';
import { errorResponses, problemResponse } from './schemas.js';

/**
 * The audit log's transparency surface: C2SP tlog-tiles under /v1/audit/tlog/, the verifier key,
 * and inclusion/consistency proofs. Read-only; the domain work is in src/audit/tiles.ts and
 * src/audit/served-tiles.ts.
 *
 * Access (docs/audit.md, "Tiles"):
 * - `GET /v1/audit/key`, `GET /v1/audit/tlog/checkpoint` and the hash tiles `tile/<L>/<N>` are
 *   public, as tlog-tiles intends and as CRL and OCSP are (docs/pki.md): they reveal only the
 *   log's size and hashes, which witnesses and gossiping clients must be able to compare without
 *   a credential to detect a split view. Like every public route they are counted in /metrics
 *   and not audited per request: they change nothing and disclose no event.
 * - Entry bundles `tile/entries/<N>` reveal every tenant's events, so they are an operator
 *   capability: action `audit:read-log` on `Rampart::Collection::"audit-log"`, addressed to
 *   tenant `default` (whose seed policy grants its admins everything). Addressing another tenant
 *   is refused before its policies are asked, since a tenant's admins must not read other
 *   tenants' events. Every bundle request is authenticated, authorized and audited.
 * - Proofs (`audit:proof`) reveal only hashes; any tenant's policy may grant them.
 *
 * Full hash tiles are immutable (tlog-tiles): they carry a one-year `immutable` Cache-Control.
 * Entry bundles are revalidated on every use (see BUNDLE). Every tile and bundle has a strong
 * ETag, and `If-None-Match` is answered 304.
 */

const LOG_RESOURCE = 'audit-log';
const YEAR = 'max-age=31536000, immutable';
const PARTIAL = 'max-age=60';
/**
 * Entry bundles are `private` (they hold every tenant's events) and revalidated on every use: retention
 * may prune a bundle later, after which its content must never be served again (src/audit/served-tiles.ts),
 * which a year of `immutable` in a client cache would defeat. Revalidation is a 304 by ETag.
 */
const BUNDLE = 'private, no-cache';
const TEXT = 'text/plain; charset=utf-8';
const BINARY = 'application/octet-stream';
const TILE_PATH_HELP = 'tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]';

function operatorLogResource(_params: Record<string, string>, tenant: string): EntityRef {
  // The tlog reveals all tenants' payloads: only the operator tenant may be addressed.
  if (tenant !== DEFAULT_TENANT) throw new AuthzError('authz.denied', 'access denied');
  return { type: 'Rampart::Collection', id: LOG_RESOURCE };
}

/** RFC 9110 §13.1.2: If-None-Match matches with the weak comparison, `*` matching anything. */
function notModified(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || (tag.startsWith('W/') ? tag.slice(2) : tag) === etag;
  });
}

const InclusionQuery = Type.Object(
  {
    index: Type.String({ pattern: '^(0|[1-9][0-9]{0,15})$', description: 'leaf index' }),
    size: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'tree size (default: the latest checkpoint)' })),
  },
  { additionalProperties: false },
);

const ConsistencyQuery = Type.Object(
  {
    from: Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'older tree size' }),
    to: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'newer tree size (default: the latest checkpoint)' })),
  },
  { additionalProperties: false },
);

const ProofAnswer = Type.Object({
  size: Type.Integer(),
  proof: Type.Array(Type.String({ description: 'base64 hash, leaf level first' })),
  checkpoint: Type.Union([Type.String({ description: 'the signed checkpoint of `size`, when one was signed' }), Type.Null()]),
});

const b64 = (h: Hash): string => Buffer.from(h).toString('base64');

export const tlogRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const tiles = new TileHashes(storeTreeReader(runtime.stores.audit));
    const served = new ServedTiles(runtime.stores.audit);

    /** The latest checkpoint bounds everything served: clients only ever see signed sizes. */
    async function signedSize(): Promise<number> {
      return (await runtime.checkpoints.latest())?.size ?? 0;
    }

    // A signed size stays signed (checkpoints are only added), so a tile within one seen before
    // needs no new read of the latest checkpoint.
    let knownSigned = 0;
    async function requireSigned(level: number, index: number, width: number): Promise<void> {
      if (tileWidthAt(level, index, knownSigned) >= width) return;
      knownSigned = Math.max(knownSigned, await signedSize());
      if (tileWidthAt(level, index, knownSigned) < width) throw new RequestError('request.not_found', 'no such tile in the latest checkpoint');
    }

    function parse(path: string, entries: boolean): TileRef {
      const ref = parseTilePath(entries ? `entries/${path}` : path);
      if (!ref || (ref.level === 'entries') !== entries) throw new RequestError('request.not_found', `not a tile path: ${TILE_PATH_HELP}`);
      return ref;
    }

    function send(req: FastifyRequest, reply: FastifyReply, tile: ServedTile, cacheControl: string): FastifyReply {
      const etag = `"${tile.digest}"`;
      reply.header('cache-control', cacheControl).header('etag', etag);
      if (notModified(req.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.type(BINARY).send(tile.body);
    }

    app.get(
      '/v1/audit/key',
      {
        config: { public: true },
        schema: { summary: 'The audit log verifier key (C2SP signed-note format)', security: [], response: { 200: Type.String() } },
      },
      async (_req, reply) => reply.type(TEXT).header('cache-control', 'public, max-age=300').send(`${runtime.checkpointer.verifierKey}\n`),
    );

    app.get(
      '/v1/audit/tlog/checkpoint',
      {
        config: { public: true },
        schema: {
          summary: 'The latest signed checkpoint (C2SP tlog-checkpoint)',
          security: [],
          response: { 200: Type.String(), 404: problemResponse('no checkpoint has been signed yet') },
        },
      },
      async (_req, reply) => {
        const latest = await runtime.checkpoints.latest();
        if (!latest) throw new RequestError('request.not_found', 'no checkpoint has been signed yet');
        knownSigned = Math.max(knownSigned, latest.size);
        return reply.type(TEXT).header('cache-control', 'public, max-age=1').send(latest.note);
      },
    );

    app.get<{ Params: { '*': string } }>(
      '/v1/audit/tlog/tile/*',
      {
        config: { public: true },
        schema: {
          summary: 'A hash tile (C2SP tlog-tiles): tile/<L>/<N>[.p/<W>]',
          security: [],
          response: { 200: Type.Unknown(), 304: Type.Null({ description: 'If-None-Match matched the ETag' }), 404: problemResponse('not a tile path, or beyond the latest checkpoint') },
        },
      },
      async (req, reply) => {
        const ref = parse(req.params['*'], false);
        const level = ref.level as number;
        await requireSigned(level, ref.index, ref.width);
        return send(req, reply, await served.hashTile(level, ref.index, ref.width), `public, ${ref.width === TILE_WIDTH ? YEAR : PARTIAL}`);
      },
    );

    app.get<{ Params: { '*': string } }>(
      '/v1/audit/tlog/tile/entries/*',
      {
        config: { authz: { action: 'audit:read-log', resource: operatorLogResource } },
        schema: {
          summary: 'An entry bundle (C2SP tlog-tiles): tile/entries/<N>[.p/<W>]',
          response: {
            200: Type.Unknown(),
            304: Type.Null({ description: 'If-None-Match matched the ETag' }),
            ...errorResponses,
            410: problemResponse('audit.entry_pruned: retention pruned an entry of this bundle; read the level-0 hash tile instead'),
          },
        },
      },
      async (req, reply) => {
        const ref = parse(req.params['*'], true);
        await requireSigned(0, ref.index, ref.width);
        return send(req, reply, await served.entryBundle(ref.index, ref.width), BUNDLE);
      },
    );

    const proofResource = (): EntityRef => ({ type: 'Rampart::Collection', id: LOG_RESOURCE });

    app.get<{ Querystring: Static<typeof InclusionQuery> }>(
      '/v1/audit/proof/inclusion',
      {
        config: { authz: { action: 'audit:proof', resource: proofResource } },
        schema: {
          summary: 'Inclusion proof of a leaf in a signed tree size (RFC 9162 §2.1.3)',
          querystring: InclusionQuery,
          response: { 200: Type.Composite([Type.Object({ index: Type.Integer(), leaf_hash: Type.String() }), ProofAnswer]), ...errorResponses },
        },
      },
      async (req) => {
        const latest = await signedSize();
        const index = Number(req.query.index);
        const size = req.query.size === undefined ? latest : Number(req.query.size);
        if (size > latest || index >= size) {
          throw new AuditError('audit.range_invalid', `need index < size ≤ ${latest} (the latest checkpoint)`, { details: { index, size, latest } });
        }
        const [leaf, proof, checkpoint] = await Promise.all([tiles.leafHash(index), tiles.inclusionProof(index, size), runtime.checkpoints.get(size)]);
        return { index, size, leaf_hash: b64(leaf), proof: proof.map(b64), checkpoint: checkpoint?.note ?? null };
      },
    );

    app.get<{ Querystring: Static<typeof ConsistencyQuery> }>(
      '/v1/audit/proof/consistency',
      {
        config: { authz: { action: 'audit:proof', resource: proofResource } },
        schema: {
          summary: 'Consistency proof between two signed tree sizes (RFC 9162 §2.1.4)',
          querystring: ConsistencyQuery,
          response: { 200: Type.Composite([Type.Object({ from: Type.Integer() }), ProofAnswer]), ...errorResponses },
        },
      },
      async (req) => {
        const latest = await signedSize();
        const from = Number(req.query.from);
        const to = req.query.to === undefined ? latest : Number(req.query.to);
        if (to > latest || from > to) {
          throw new AuditError('audit.range_invalid', `need 0 < from ≤ to ≤ ${latest} (the latest checkpoint)`, { details: { from, to, latest } });
        }
        const proof = await tiles.consistencyProof(from, to);
        return { from, size: to, proof: proof.map(b64), checkpoint: (await runtime.checkpoints.get(to))?.note ?? null };
      },
    );
  };
