import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FIELD_CHARS, requireEntrySize } from '../../src/audit/event-bounds.js';
import { type AuditEvent, serializeEvent } from '../../src/audit/event.js';
import { AuditLog } from '../../src/audit/log.js';
import { MAX_ENTRY_BYTES, decodeEntryBundle, encodeEntryBundle } from '../../src/audit/tiles.js';
import { ManualClock } from '../../src/core/clock.js';
import { SqlAuditStore } from '../../src/store/audit-store.js';
import { type StoreDatabase, openDatabase } from '../../src/store/database.js';
import { testEvent } from '../support/audit-event.js';
import { TEST_DATABASES } from '../support/databases.js';

/**
 * Events larger than a C2SP entry bundle can carry (65,535 bytes): requests cannot produce one
 * (src/audit/event-bounds.ts shrinks it, and says so), and the log refuses one with
 * `audit.entry_too_large` if anything else tries.
 */

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
// Worst cases for JSON size: control characters (6 bytes each), astral characters, plain ASCII.
const nasty = fc.oneof(
  fc.string({ unit: 'binary', minLength: 0, maxLength: 4000 }),
  fc.constantFrom('\u0000', '😀', 'a', '"').map((c) => c.repeat(20_000)),
);

const hugeEvent = fc.record({
  id: nasty,
  route: nasty,
  policies: fc.array(nasty, { maxLength: 200 }),
  details: fc.dictionary(fc.string({ maxLength: 300 }), fc.oneof(nasty, fc.array(nasty, { maxLength: 50 }), fc.integer()), { maxKeys: 80 }),
  subject: fc.option(nasty, { nil: undefined }),
});

function eventOf(h: { id: string; route: string; policies: string[]; details: Record<string, unknown>; subject: string | undefined }): AuditEvent {
  return testEvent(1, {
    principal: { type: 'Rampart::Token', id: h.id, tenant: 'default', auth_method: 'token' },
    resource: { type: 'Rampart::Tenant', id: h.id },
    authorization: { decision: 'allow', policies: h.policies, policy_version: 1 },
    http: { method: 'POST', route: h.route, status: 200 },
    details: h.details as AuditEvent['details'],
    ...(h.subject === undefined ? {} : { subject: { ref: 'hmac-sha256:00', key_id: 'k', data: h.subject } }),
  });
}

describe('event size bounds', () => {
  it('leave an event that fits exactly as it was', () => {
    const e = testEvent(1, { details: { reason: 'x'.repeat(10_000), list: ['a', 'b'] } });
    const s = serializeEvent(e);
    expect(JSON.parse(s).details).toEqual({ reason: 'x'.repeat(10_000), list: ['a', 'b'] });
  });

  it('make any event, however large its request-controlled parts, fit one entry and stay valid JSON', () => {
    fc.assert(
      fc.property(hugeEvent, (h) => {
        const s = serializeEvent(eventOf(h));
        expect(bytes(s)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
        const parsed = JSON.parse(s);
        expect(parsed.schema_version).toBe(1);
        // The bundle round-trips it: the tiles can serve it.
        expect(Buffer.from(decodeEntryBundle(encodeEntryBundle([Buffer.from(s)]))[0]!).toString('utf8')).toBe(s);
        requireEntrySize(s);
      }),
      { numRuns: 60 },
    );
  });

  it('mark a shortened event, keep its fixed fields, and shorten deterministically', () => {
    const e = eventOf({ id: 'i'.repeat(70_000), route: '/v1/x', policies: ['p'], details: { note: '\u0000'.repeat(30_000) }, subject: 's'.repeat(1000) });
    const s = serializeEvent(e);
    expect(serializeEvent(e)).toBe(s);
    const parsed = JSON.parse(s);
    expect(parsed.details).toMatchObject({ truncated: true, original_bytes: expect.any(Number) });
    expect(parsed.details.original_bytes).toBeGreaterThan(MAX_ENTRY_BYTES);
    expect(parsed.resource.id).toBe(`${'i'.repeat(MAX_FIELD_CHARS)}…`);
    expect(parsed).toMatchObject({ outcome: 'success', request_id: 'req-1', http: { method: 'POST', route: '/v1/x', status: 200 } });
    expect(parsed.subject.data).toBe('s'.repeat(1000)); // ciphertext is never cut: it is kept whole or dropped
  });

  it('never cut a character in half', () => {
    const e = eventOf({ id: '😀'.repeat(40_000), route: '/', policies: [], details: {}, subject: undefined });
    const parsed = JSON.parse(serializeEvent(e));
    expect(Array.from(parsed.resource.id as string)).toHaveLength(MAX_FIELD_CHARS + 1);
    expect((parsed.resource.id as string).startsWith('😀')).toBe(true);
  });
});

describe('requireEntrySize', () => {
  it('accepts 65,535 bytes and refuses 65,536 with audit.entry_too_large', () => {
    requireEntrySize('a'.repeat(MAX_ENTRY_BYTES));
    requireEntrySize('é'.repeat(Math.floor(MAX_ENTRY_BYTES / 2)));
    expect(() => requireEntrySize('a'.repeat(MAX_ENTRY_BYTES + 1))).toThrow(expect.objectContaining({ code: 'audit.entry_too_large' }));
    expect(() => requireEntrySize('é'.repeat(MAX_ENTRY_BYTES / 2 + 1))).toThrow(expect.objectContaining({ code: 'audit.entry_too_large' }));
  });
});

describe.each(TEST_DATABASES)('the log refuses an oversized entry ($name)', (target) => {
  let database: StoreDatabase;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rampart-entry-size-'));
    const created = await target.create();
    database = await openDatabase({ databaseUrl: created.url, dataDir });
    cleanup = async () => {
      await database.close();
      await created.drop();
      rmSync(dataDir, { recursive: true, force: true });
    };
  });
  afterAll(async () => {
    await cleanup();
  });

  it('writes nothing of a batch holding one oversized row', async () => {
    const store = new SqlAuditStore(database.db, database.dialect);
    const ok = { tenant: 'default', recordedAt: '2026-01-01T00:00:00.000Z', payload: '{"ok":true}' };
    const big = { ...ok, payload: JSON.stringify({ x: 'x'.repeat(MAX_ENTRY_BYTES) }) };
    await expect(store.insert([ok, big])).rejects.toMatchObject({ code: 'audit.entry_too_large' });
    expect(await store.count()).toBe(0);
  });

  it('appends a request event of any size through AuditLog, shortened to fit', async () => {
    const store = new SqlAuditStore(database.db, database.dialect);
    const log = new AuditLog({ store, clock: new ManualClock() });
    await log.append(eventOf({ id: '\u0000'.repeat(100_000), route: '/', policies: [], details: { d: 'd'.repeat(200_000) }, subject: undefined }));
    await log.integrateAll();
    const [entry] = await store.leafEntries(0, 1);
    expect(bytes(entry!.payload)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    expect(JSON.parse(entry!.payload).details.truncated).toBe(true);
  });
});
