/**
 * `rampart audit verify`: checks the whole audit log (src/audit/verify.ts).
 *
 * Online (default) it reads the server's C2SP tlog tiles and trusts only the verifier key: pass
 * it with `--key` (a file or the key string); without it the key the server presents is used on
 * first use, and the output says so — a server that lies about its key can then lie about
 * everything. Offline (`--data-dir`, optionally `--database-url`) it opens the store directly, as
 * an operator does on the server host, and also checks every stored checkpoint and leaf hash.
 */
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import type { Command } from 'commander';
import { type NoteVerifier, parseVerifierKey } from '../../audit/note.js';
import { type VerifyReport, tlogSource, verifyLog } from '../../audit/verify.js';
import type { Cli, ClientFlags, Connection } from '../main.js';

interface AuditVerifyFlags extends ClientFlags {
  key?: string;
  dataDir?: string;
  databaseUrl?: string;
}

/**
 * Adds `verify [--key k] [--data-dir d [--database-url u]]` under the `audit` group.
 *
 * @example
 * ```ts
 * registerAuditVerify(auditGroup, cli); // rampart audit verify --key ./audit.vkey
 * ```
 */
export function registerAuditVerify(audit: Command, cli: Cli): void {
  cli
    .clientCommand(audit, 'verify', 'Verify every entry, tile and checkpoint of the audit log')
    .option('--key <key-or-file>', 'the log verifier key (`<origin>+<id>+<base64>`) or a file holding it')
    .option('--data-dir <dir>', 'verify offline, straight from the store in this data directory')
    .option('--database-url <url>', 'with --data-dir: the PostgreSQL store instead of SQLite')
    .action(async (flags: AuditVerifyFlags) => {
      const report = flags.dataDir === undefined ? await verifyOnline(cli, flags) : await verifyOffline(cli, flags);
      printReport(cli, flags, report);
    });
}

/** `--key` as a file when one exists at that path, else as the key string itself. */
export function readVerifierKey(value: string): NoteVerifier {
  return parseVerifierKey(existsSync(value) ? readFileSync(value, 'utf8') : value);
}

async function verifyOnline(cli: Cli, flags: AuditVerifyFlags): Promise<VerifyReport> {
  const conn = await cli.connection(flags);
  const fetcher = tlogFetcher(conn);
  try {
    const verifier = await resolveOnlineKey(cli, fetcher, flags.key);
    return await verifyLog(tlogSource((path) => fetcher.get(`/v1/audit/tlog/${path}`)), { verifier });
  } finally {
    fetcher.close();
  }
}

/** The pinned key, or the server's own with a trust-on-first-use warning. */
export async function resolveOnlineKey(cli: Cli, fetcher: TlogFetcher, key: string | undefined): Promise<NoteVerifier> {
  if (key !== undefined) return readVerifierKey(key);
  const served = new TextDecoder().decode(await fetcher.get('/v1/audit/key'));
  const verifier = parseVerifierKey(served);
  cli.out.note(`Warning: trusting the verifier key the server presented (trust on first use): ${verifier.verifierKey}`);
  cli.out.note('Pin it with --key so that a server which replaced its key cannot pass verification.');
  return verifier;
}

async function verifyOffline(cli: Cli, flags: AuditVerifyFlags): Promise<VerifyReport> {
  const { openDatabase } = await import('../../store/database.js');
  const { SqlAuditStore } = await import('../../store/audit-store.js');
  const { SqlCheckpointStore } = await import('../../store/checkpoint-store.js');
  const { storeLogSource } = await import('../../audit/verify.js');
  const database = await openDatabase({ dataDir: flags.dataDir as string, databaseUrl: flags.databaseUrl });
  try {
    const checkpoints = new SqlCheckpointStore(database.db, database.dialect);
    let verifier: NoteVerifier;
    if (flags.key !== undefined) {
      verifier = readVerifierKey(flags.key);
    } else {
      const stored = await checkpoints.loadKey();
      if (!stored) throw new Error('the store holds no audit log key: is this a Rampart data directory?');
      verifier = parseVerifierKey(stored.verifierKey);
      cli.out.note(`Warning: using the verifier key stored in the database (${verifier.verifierKey}).`);
      cli.out.note('Someone able to rewrite the store can replace it too: pass --key with the key you published.');
    }
    return await verifyLog(storeLogSource(new SqlAuditStore(database.db, database.dialect), checkpoints), { verifier });
  } finally {
    await database.close();
  }
}

export function printReport(cli: Cli, flags: ClientFlags, report: VerifyReport): void {
  if (!report.ok) process.exitCode = 1;
  if (flags.format === 'json') {
    cli.out.json({
      ok: report.ok,
      entries_checked: report.entriesChecked,
      entries_pruned: report.entriesPruned,
      checkpoints_checked: report.checkpointsChecked,
      tiles_checked: report.tilesChecked,
      latest: report.latest ? { size: report.latest.size, root_hash: Buffer.from(report.latest.rootHash).toString('base64') } : null,
      unsigned_entries: report.unsignedEntries,
      first_bad_index: report.firstBadIndex ?? null,
      problems: report.problems,
    });
    return;
  }
  cli.out.fields([
    ['result', report.ok ? 'ok' : 'FAILED'],
    ['entries_checked', String(report.entriesChecked)],
    ['entries_pruned', String(report.entriesPruned)],
    ['checkpoints_checked', String(report.checkpointsChecked)],
    ['tiles_checked', String(report.tilesChecked)],
    ['latest_size', report.latest ? String(report.latest.size) : '-'],
    ['latest_root', report.latest ? Buffer.from(report.latest.rootHash).toString('base64') : '-'],
    ['unsigned_entries', String(report.unsignedEntries)],
    ['first_bad_index', report.firstBadIndex === undefined ? '-' : String(report.firstBadIndex)],
  ]);
  for (const p of report.problems) cli.out.line(`problem: ${p.kind}: ${p.message}`);
}

export interface TlogFetcher {
  get(path: string): Promise<Uint8Array>;
  close(): void;
}

/**
 * Connections a fetcher keeps open. tlogSource asks for a chunk's 64 bundles and their tiles at
 * once; without a cap each would open its own TLS connection, and the handshakes (on both ends)
 * cost more than the extra parallelism gains. 16 kept-alive connections measured ~10% faster
 * than unlimited on bench/audit.ts (docs/audit.md, Performance); 4 was slower.
 */
const FETCH_CONNECTIONS = 16;

/**
 * GETs server paths with the command's token and CA; any non-200 answer is an error (a missing
 * tile is as bad as a wrong one).
 */
export function tlogFetcher(conn: Connection): TlogFetcher {
  // One TLS context for every connection: given `ca` instead, each connection parses the CA anew.
  const secureContext = tls.createSecureContext({ minVersion: 'TLSv1.3', ...(conn.caPem ? { ca: conn.caPem } : {}) });
  const agent = new https.Agent({ keepAlive: true, maxSockets: FETCH_CONNECTIONS, minVersion: 'TLSv1.3', secureContext });
  const base = new URL(conn.addr);
  const get = (path: string): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      const url = new URL(base.href);
      url.pathname = `${base.pathname.replace(/\/+$/, '')}${path}`;
      const headers: Record<string, string> = {};
      if (conn.token) headers.authorization = `Bearer ${conn.token}`;
      if (conn.tenant) headers['x-rampart-tenant'] = conn.tenant;
      const req = https.get(url, { agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          // A Buffer is a Uint8Array: handed over as it is, not copied (a bundle is read once).
          const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
          if (res.statusCode === 200) return resolve(body);
          // The status travels with the error: tlogSource reads 410 on a bundle as "pruned".
          reject(Object.assign(new Error(`GET ${url.pathname} answered ${res.statusCode}: ${body.toString('utf8').slice(0, 300)}`), { status: res.statusCode }));
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url.pathname} timed out`)));
      req.on('error', reject);
    });
  return { get, close: () => agent.destroy() };
}
