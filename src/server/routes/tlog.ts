import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { EntityRef } from '../../audit/event.js';
import type { Hash } from '../../audit/merkle.js';
import { TILE_WIDTH, TileHashes, encodeEntryBundle, encodeHashTile, parseTilePath, tileWidthAt } from '../../audit/tiles.js';
import { storeTreeReader } from '../../audit/tree-reader.js';
import { AuditError, AuthzError, RequestError } from '../../core/errors.js';
import { DEFAULT_TENANT } from '../../core/ids.js';
import type { Runtime } from '../../runtime.js';
import { errorResponses, problemResponse } from './schemas.js';

/**
 * The audit log's transparency surface: C2SP tlog-tiles under /v1/audit/tlog/, the verifier key,
 * and inclusion/consistency proofs. Read-only; the domain work is in src/audit/tiles.ts.
 *
 * Access:
 * - `GET /v1/audit/key` and `GET /v1/audit/tlog/checkpoint` are public. The key is public by
 *   nature, and a checkpoint reveals only the log's size and root; witnesses and gossiping
 *   clients must be able to compare checkpoints without a credential to detect a split view.
 *   The size does leak the control plane's overall request volume; that is accepted.
 * - Tiles and entry bundles reveal every tenant's events, so they are an operator capability:
 *   action `audit:read-log` on `Rampart::Collection::"audit-log"`, addressed to tenant `default`
 *   (whose seed policy grants its admins everything). Addressing another tenant is refused
 *   before its policies are asked, since a tenant's admins must not read other tenants' events.
 * - Proofs (`audit:proof`) reveal only hashes; any tenant's policy may grant them.
 */

const LOG_RESOURCE = 'audit-log';
const IMMUTABLE = 'private, max-age=31536000, immutable';
const PARTIAL = 'private, max-age=60';
const TEXT = 'text/plain; charset=utf-8';
const BINARY = 'application/octet-stream';

function operatorLogResource(_params: Record<string, string>, tenant: string): EntityRef {
  // The tlog reveals all tenants' payloads: only the operator tenant may be addressed.
  if (tenant !== DEFAULT_TENANT) throw new AuthzError('authz.denied', 'access denied');
  return { type: 'Rampart::Collection', id: LOG_RESOURCE };
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

    /** The latest checkpoint bounds everything served: clients only ever see signed sizes. */
    async function signedSize(): Promise<number> {
      return (await runtime.checkpoints.latest())?.size ?? 0;
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
        return reply.type(TEXT).header('cache-control', 'public, max-age=1').send(latest.note);
      },
    );

    app.get<{ Params: { '*': string } }>(
      '/v1/audit/tlog/tile/*',
      {
        config: { authz: { action: 'audit:read-log', resource: operatorLogResource } },
        schema: {
          summary: 'A hash tile or entry bundle (C2SP tlog-tiles)',
          response: { 200: Type.Unknown(), ...errorResponses, 410: problemResponse('audit.entry_pruned: retention pruned an entry of this bundle; read the level-0 hash tile instead') },
        },
      },
      async (req, reply) => {
        const ref = parseTilePath(req.params['*']);
        if (!ref) throw new RequestError('request.not_found', 'not a tile path: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]');
        const size = await signedSize();
        const available = tileWidthAt(ref.level === 'entries' ? 0 : ref.level, ref.index, size);
        if (ref.width > available) throw new RequestError('request.not_found', 'no such tile in the latest checkpoint');
        const body = ref.level === 'entries' ? await entryBundle(ref.index, ref.width) : encodeHashTile(await tiles.tile(ref.level, ref.index, ref.width));
        return send(reply, body, ref.width === TILE_WIDTH ? IMMUTABLE : PARTIAL);
      },
    );

    async function entryBundle(index: number, width: number): Promise<Uint8Array> {
      const start = index * TILE_WIDTH;
      const rows = await runtime.stores.audit.leafEntries(start, start + width);
      if (rows.length !== width || rows.some((r, i) => r.leafIndex !== start + i)) {
        throw new AuditError('audit.log_inconsistent', `entries of bundle ${index} are missing from the store`, { details: { index, width, found: rows.length } });
      }
      // A bundle is all of its entries or nothing: an empty entry would be read as a real one.
      // Hash tiles stay served, so verifiers fall back to the leaf hashes for this range.
      const pruned = rows.filter((r) => r.prunedAt !== null).map((r) => r.leafIndex);
      if (pruned.length > 0) {
        throw new AuditError('audit.entry_pruned', `retention pruned ${pruned.length} entries of bundle ${index}; its level-0 hash tile is still served`, {
          details: { index, width, first_pruned: pruned[0], pruned: pruned.length },
        });
      }
      return encodeEntryBundle(rows.map((r) => new Uint8Array(Buffer.from(r.payload, 'utf8'))));
    }

    function send(reply: FastifyReply, body: Uint8Array, cacheControl: string): FastifyReply {
      return reply.type(BINARY).header('cache-control', cacheControl).send(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    }

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
