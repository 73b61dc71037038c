import type { FastifyPluginAsync } from 'fastify';
import type { PkiEvent } from '../../pki/events.js';
import type { Runtime } from '../../runtime.js';
import { errorResponses } from './schemas.js';
import { EventStreams } from '../event-stream.js';
import { resumeLost, resumePointOf } from '../event-resume.js';

/** Change-log entries (of every tenant) read per store query while replaying after `Last-Event-ID`. */
const REPLAY_PAGE = 500;
/** Live events held back while the replay runs; a stream further behind is cut off and resumes. */
const MAX_HELD = 10_000;

/**
 * `GET /v1/pki/events`: server-sent events (WHATWG HTML §9.2) of the addressed tenant's
 * revocations and of trust-bundle changes. The request is authorized and audited once, when the
 * stream opens; events carry serials and SPIFFE IDs, never keys.
 *
 * A revocation carries its change-log sequence as its `id:`. A client that reconnects with
 * `Last-Event-ID` first gets the tenant's revocations logged after that id (the log keeps 24 h,
 * PKI_EVENT_RETENTION_MS), then the live ones, each once: live events are held back while the
 * replay runs and those it already sent are dropped (both come in sequence order). An id the log
 * no longer covers, or that is not an id at all, starts the stream with a `resync` event: the
 * client must drop what it cached. Bundle events have no id, and are neither logged nor
 * replayed: they announce a state, not a delta, and the bundle says where it stands itself
 * (`spiffe_sequence`), so a reconnecting client re-reads it (the agent does) instead. An event
 * without `id:` leaves the client's last event id as it was (WHATWG HTML §9.2.6).
 */
export const pkiEventRoutes =
  (runtime: Runtime): FastifyPluginAsync =>
  async (app) => {
    const streams = new EventStreams(app);
    app.get(
      '/v1/pki/events',
      {
        config: { authz: { action: 'pki:events', resource: (_p, tenant) => ({ type: 'Rampart::Collection', id: `${tenant}/pki` }) } },
        schema: {
          summary: 'Revocation and trust-bundle notifications, as server-sent events (`revoked` with `id:`, `bundle`, `resync`); resumes after `Last-Event-ID`',
          response: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errorResponses },
        },
      },
      async (req, reply) => {
        const ctx = req.rampart;
        const tenant = ctx.tenant!;
        const header = req.headers['last-event-id'];
        const resumeAfter = resumePointOf(header);
        // The client asked to resume but named no id of ours: it cannot be resumed, only resynced.
        const unusableId = header !== undefined && resumeAfter === undefined;
        // The stream has no end to hang the audit event on: record it now, before the first byte.
        await ctx.transact(200, async () => ({ result: undefined, details: { stream: 'pki-events', ...(resumeAfter === undefined ? {} : { resume_after: resumeAfter }) } }));
        let unsubscribe: () => void = () => undefined;
        const stream = streams.open(req, reply, { onStop: () => unsubscribe() });

        /** The last revocation sent: the hub and the replay both deliver in sequence order, so anything at or below it was sent. */
        let lastSent = resumeAfter ?? 0;
        /** Live events that arrived while the replay ran, or undefined once it is done. */
        let held: [PkiEvent, number | undefined][] | undefined = resumeAfter === undefined ? undefined : [];
        const write = (event: PkiEvent, sequence: number | undefined) => {
          if (sequence === undefined) stream.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
          else if (sequence > lastSent && !stream.closed) {
            lastSent = sequence;
            stream.write(`id: ${sequence}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
          }
        };
        const send = (event: PkiEvent, sequence?: number) => {
          if (!held) return write(event, sequence);
          if (held.push([event, sequence]) > MAX_HELD) void stream.end();
        };

        // Subscribed before the log is read: whatever commits from here on reaches `send`.
        unsubscribe = runtime.pkiEvents.subscribe(tenant, send);
        if (stream.closed) unsubscribe(); // the client left while the opening was audited
        try {
          if (unusableId) stream.write('event: resync\ndata: {}\n\n');
          else if (resumeAfter !== undefined) await replay(resumeAfter);
        } catch (err) {
          req.log.error({ err }, 'replaying the PKI event log failed');
          await stream.end();
          return;
        }
        const waiting = held ?? [];
        held = undefined;
        for (const [event, sequence] of waiting) write(event, sequence);
        stream.write(': connected\n\n');

        async function replay(after: number): Promise<void> {
          const log = runtime.stores.pkiEvents;
          const last = await log.head();
          const first = (await log.after(0, 1))[0]?.sequence;
          if (resumeLost(after, first, last)) {
            // An id past the head is not ours: no live sequence may be compared with it.
            lastSent = 0;
            stream.write('event: resync\ndata: {}\n\n');
            return;
          }
          for (let cursor = after; !stream.closed; ) {
            const page = await log.after(cursor, REPLAY_PAGE);
            for (const entry of page) if (entry.tenant === tenant) write(entry.event, entry.sequence);
            if (page.length < REPLAY_PAGE) return;
            cursor = page[page.length - 1]!.sequence;
          }
        }
      },
    );
  };
