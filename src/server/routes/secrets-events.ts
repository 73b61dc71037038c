import type { TLSSocket } from 'node:tls';
import type { FastifyPluginAsync } from 'fastify';
import type { EntityRef } from '../../audit/event.js';
import type { TokenStore } from '../../identity/store.js';
import { canonicalSerial } from '../../pki/issuer.js';
import { openSecretEventFeed, type SecretEventFeed } from '../../secrets/rotation/feed.js';
import type { StoredSecretEvent } from '../../secrets/rotation/store.js';
import type { Runtime } from '../../runtime.js';
import { errorResponses } from './schemas.js';
import { EventStreams } from '../event-stream.js';
import { EVENT_ID_PATTERN, resumeLost, resumePointOf } from '../event-resume.js';

/** Events replayed after `Last-Event-ID` per store read. */
const REPLAY_PAGE = 500;
/** A subscriber this far behind (events waiting for their decision) is cut off; it resumes with Last-Event-ID. */
const MAX_BACKLOG = 10_000;
/** What the stream opening is authorized on, as Vault's `sys/events/subscribe/<type>` (Vault 1.16 event notifications). */
const SUBSCRIBE_PATH = 'sys/events/subscribe/secrets';

/** The Vault path whose `read` an event's subscriber must hold: the secret's data, or the static role's credentials. */
export function eventReadPath(e: Pick<StoredSecretEvent, 'kind' | 'mountPath' | 'path'>): string {
  return e.kind === 'database.static.rotated' ? `${e.mountPath}/static-creds/${e.path}` : `${e.mountPath}/data/${e.path}`;
}

/** The event as sent: names, versions and times only, never a value. */
function payload(e: StoredSecretEvent): string {
  return JSON.stringify({
    id: e.id,
    kind: e.kind,
    mount: e.mountPath,
    path: e.path,
    version: e.version,
    occurred_at: e.occurredAt,
    previous_readable_until: e.previousReadableUntil,
  });
}

/**
 * `GET /v1/secrets/events`: server-sent events (WHATWG HTML §9.2) of secret changes in the
 * addressed tenant: `kv.written`, `kv.rotated`, `kv.rotation_due`, `version.grace_ended`,
 * `database.static.rotated`. Opening the stream needs `read` on `sys/events/subscribe/secrets`;
 * then each event is sent only if the subscriber may `read` the secret it names, decided by the
 * same Cedar policies (and `sys/policy` ACLs) as a read of that path. The opening is audited;
 * events carry names, versions and times, never values. `Last-Event-ID` resumes after an event
 * still in the log (1 h); older, the stream starts with a `resync` event: re-read what you watch.
 * Ids on the wire strictly increase (src/secrets/rotation/feed.ts). The stream ends when what
 * opened it no longer authenticates: a token revoked or expired (checked before each event and
 * each heartbeat), a workload certificate revoked (at the revocation, and at each heartbeat).
 */
export const secretEventRoutes =
  (
    runtime: Runtime,
    /** Token rows as authentication reads them (the app's cache), re-read before each event. */
    tokens: Pick<TokenStore, 'get'> = runtime.stores.tokens,
  ): FastifyPluginAsync =>
  async (app) => {
    const streams = new EventStreams(app);
    app.get(
      '/v1/secrets/events',
      {
        config: { authz: { action: 'vault:read', resource: () => ({ type: 'Rampart::VaultPath', id: SUBSCRIBE_PATH }) } },
        schema: {
          summary: 'Secret change notifications, as server-sent events (`kv.written`, `kv.rotated`, `kv.rotation_due`, `version.grace_ended`, `database.static.rotated`)',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              mount: { type: 'string', minLength: 1, maxLength: 1024, description: 'Only events of this mount path' },
              path: { type: 'string', minLength: 1, maxLength: 1024, description: 'Only events of this secret path (or static role name)' },
              last_event_id: { type: 'string', pattern: EVENT_ID_PATTERN, description: 'Resume after this event (the `Last-Event-ID` header wins)' },
            },
          },
          response: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses },
        },
      },
      async (req, reply) => {
        const ctx = req.rampart;
        const tenant = ctx.tenant!;
        const principal = ctx.principal!;
        const q = req.query as { mount?: string; path?: string; last_event_id?: string };
        const resumeAfter = resumePointOf(req.headers['last-event-id'], q.last_event_id);

        const permitted = async (e: StoredSecretEvent): Promise<boolean> => {
          if ((q.mount !== undefined && e.mountPath !== q.mount) || (q.path !== undefined && e.path !== q.path)) return false;
          const resource: EntityRef = { type: 'Rampart::VaultPath', id: eventReadPath(e) };
          const decision = await runtime.authorizer.authorize({
            tenant,
            principal,
            action: 'vault:read',
            resource,
            context: { tenant, source_ip: req.ip, mtls: principal.authMethod === 'mtls', request_time: Math.floor(runtime.clock.now().getTime() / 1000) },
          });
          runtime.metrics.authzDecisions.inc({ decision: decision.decision });
          return decision.decision === 'allow';
        };

        /** The certificate an mTLS principal authenticated with, by canonical serial; undefined for a token. */
        const presented = principal.authMethod === 'mtls' ? (req.raw.socket as Partial<TLSSocket>).getPeerCertificate?.(false) : undefined;
        const certificateSerial = presented?.serialNumber ? canonicalSerial(presented.serialNumber) : undefined;
        /** Whether what authenticated the opening still would: the token live, the certificate not revoked. */
        const principalStands = async (): Promise<boolean> => {
          const now = runtime.clock.now().toISOString();
          if (principal.type === 'Rampart::Token') {
            const token = await tokens.get(principal.id);
            return token !== undefined && token.revokedAt === null && (token.expiresAt === null || token.expiresAt > now);
          }
          if (certificateSerial === undefined) return true;
          // As authentication: a certificate with no record of revocation stands on its verified chain.
          const issued = await runtime.stores.certificates.get(principal.tenant, certificateSerial);
          return !issued?.revokedAt;
        };

        // The stream has no end to hang the audit event on: record it now, before the first byte.
        await ctx.transact(200, async () => ({ result: undefined, details: { stream: 'secrets-events', ...(resumeAfter === undefined ? {} : { resume_after: resumeAfter }) } }));
        let backlog = 0;
        let chain: Promise<void> = Promise.resolve();
        let feed: SecretEventFeed | undefined;
        let unwatchRevocations: () => void = () => undefined;
        const stream = streams.open(req, reply, {
          // A revoked or expired token or certificate stops receiving at the latest at the next heartbeat.
          heartbeat: (s) =>
            void (async () => {
              if (!(await principalStands())) return s.end();
              s.write(': heartbeat\n\n');
            })().catch((err) => req.log.error({ err }, 'secret event stream heartbeat failed')),
          onStop: () => {
            feed?.close();
            unwatchRevocations();
          },
        });
        const enqueue = (e: StoredSecretEvent) => {
          if (++backlog > MAX_BACKLOG) {
            void stream.end();
            return;
          }
          // Decisions are asynchronous; chaining keeps the events in the order the feed gives them.
          chain = chain.then(async () => {
            backlog--;
            if (stream.closed) return;
            let allowed = false;
            try {
              // A token revoked or expired since the opening ends the stream before its next event
              // (the token cache makes this a memory read; another replica's revocation shows within 1 s).
              if (principal.type === 'Rampart::Token' && !(await principalStands())) {
                void stream.end();
                return;
              }
              allowed = await permitted(e);
            } catch (err) {
              // Fail closed: an event whose decision failed is not sent.
              req.log.error({ err }, 'authorizing a secret event failed');
            }
            if (allowed) stream.write(`id: ${e.id}\nevent: ${e.kind}\ndata: ${payload(e)}\n\n`);
          });
        };

        if (certificateSerial !== undefined) {
          // The workload's certificate revoked (on this replica or another: the PKI change log feeds
          // the hub) ends its stream at once, as authentication refuses the certificate from then on.
          const serial = certificateSerial;
          unwatchRevocations = runtime.pkiEvents.subscribe(principal.tenant, (event) => {
            if (event.type === 'revoked' && event.serial_numbers.includes(serial)) void stream.end();
          });
          if (stream.closed) unwatchRevocations();
        }

        try {
          const opened = await openSecretEventFeed({
            hub: runtime.rotation.events,
            store: runtime.stores.rotation,
            tenant,
            resumeAfter,
            lost: resumeLost,
            deliver: enqueue,
            resync: () => stream.write(`event: resync\ndata: {}\n\n`),
            drained: () => chain,
            overflow: () => void stream.end(),
            pageSize: REPLAY_PAGE,
            maxBuffered: MAX_BACKLOG,
          });
          if (stream.closed) opened.close();
          else feed = opened;
          await chain;
          stream.write(': connected\n\n');
        } catch (err) {
          req.log.error({ err }, 'opening the secret event stream failed');
          await stream.end();
        }
      },
    );
  };
