import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASES } from '../support/databases.js';
import { startServerProcess } from '../support/processes.js';

interface Answer {
  readonly status: number;
  readonly requestId: string;
  readonly body: string;
}

function createToken(addr: string, ca: string, token: string, agent: Agent, n: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ ttl: '1h', policies: [], display_name: '' });
    const req = request(
      `${addr}/v1/tokens`,
      { method: 'POST', ca, agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-crash-test': String(n) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-request-id'] ?? ''), body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads the server's store from outside the process: its SQLite file, or its PostgreSQL database. */
async function readStore<T>(url: string | undefined, dataDir: string, text: string): Promise<T[]> {
  if (!url) {
    // Opening read-write replays the WAL, as the next server start would.
    const db = new Database(join(dataDir, 'rampart.db'));
    try {
      return db.prepare(text).all() as T[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

/**
 * Durability of group-committed writes (src/store/group-commit.ts) across a crash: the server
 * process is killed with SIGKILL (no drain, no shutdown hook) while many token creations are in
 * flight. Afterwards every creation the server acknowledged (201) must be in the store with its
 * audit event, and no token may exist without its event: an answer is sent only once the batch
 * holding both is durable, and a batch commits whole or not at all. On PostgreSQL (one
 * transaction per request) the same must hold. SIGKILL ends the process, not the machine: what
 * the kernel already accepted survives it, so this checks the order of COMMIT and answer, not
 * the fsync itself (synchronous = FULL, src/store/database.ts).
 */
describe.each(TEST_DATABASES)('crash during concurrent writes ($name)', (target) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-crash-'));
  let url: string | undefined;
  let drop: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    ({ url, drop } = await target.create());
  });
  afterAll(async () => {
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write and its audit event after SIGKILL', async () => {
    const server = await startServerProcess(['--data-dir', dataDir], url ? { RAMPART_DATABASE_URL: url } : {});
    const ca = readFileSync(join(dataDir, 'ca.pem'), 'utf8');
    const admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const agent = new Agent({ keepAlive: true, maxSockets: 32, ca });
    const accessors = async () => (await readStore<{ accessor: string }>(url, dataDir, 'select accessor from tokens order by accessor')).map((r) => r.accessor);
    const before = await accessors();
    const acknowledged: { accessor: string; requestId: string }[] = [];
    let sent = 0;
    let killed = false;
    const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
    const worker = async () => {
      while (!killed) {
        const n = sent++;
        let answer: Answer;
        try {
          answer = await createToken(server.addr, ca, admin, agent, n);
        } catch {
          return; // the connection died with the process: never acknowledged
        }
        if (answer.status !== 201) continue;
        acknowledged.push({ accessor: (JSON.parse(answer.body) as { accessor: string }).accessor, requestId: answer.requestId });
        if (acknowledged.length >= 300 && !killed) {
          killed = true;
          server.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    await exited;
    agent.destroy();
    // Requests were still in flight when the process died, so the kill really was mid-load.
    expect(sent).toBeGreaterThan(acknowledged.length);
    expect(acknowledged.length).toBeGreaterThanOrEqual(300);

    const tokens = new Set(await accessors());
    const events = (await readStore<{ payload: string }>(url, dataDir, `select payload from audit_events where payload like '%"token:create"%'`)).map(
      (r) => JSON.parse(r.payload) as { request_id: string; outcome: string; details?: { created_accessor?: string } },
    );
    const eventByRequest = new Map(events.map((e) => [e.request_id, e]));
    for (const a of acknowledged) {
      expect(tokens.has(a.accessor), `token ${a.accessor}`).toBe(true);
      const event = eventByRequest.get(a.requestId);
      expect(event?.outcome, `audit event of ${a.requestId}`).toBe('success');
      expect(event?.details?.created_accessor).toBe(a.accessor);
    }
    // Atomicity: whatever committed, acknowledged or not, has exactly one audit event.
    const audited = events.filter((e) => e.outcome === 'success').map((e) => e.details?.created_accessor);
    expect(new Set(audited).size).toBe(audited.length);
    const unaudited = [...tokens].filter((t) => !audited.includes(t));
    expect(unaudited).toEqual(before);
  }, 180_000);
});
