/**
 * The `rampart` command line. Client commands talk HTTPS to the server through the SDK exactly
 * like any other client (they never open the database); `rampart server` runs the server itself.
 *
 * Connection settings follow Vault's model: a flag beats its environment variable
 * (`RAMPART_ADDR`, `RAMPART_TOKEN`, `RAMPART_CACERT`, `RAMPART_TENANT`), which beats the default.
 * Command files under `commands/` only declare flags and format output; connecting, reading
 * credentials and mapping errors to exit codes happen here, once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { RampartApiError, RampartClient } from '../sdk/index.js';
import { registerAuditEvents } from './commands/audit-events.js';
import { registerAuditTail } from './commands/audit-tail.js';
import { registerAuditErase } from './commands/audit-erase.js';
import { registerAuditHold } from './commands/audit-hold.js';
import { registerAuditVerify } from './commands/audit-verify.js';
import { registerAuditWitness } from './commands/audit-witness.js';
import { registerHealth } from './commands/health.js';
import { registerAgentRun } from './commands/agent-run.js';
import { registerAgentTokenCreate } from './commands/agent-token-create.js';
import { registerCaIntermediate } from './commands/ca-intermediate.js';
import { registerCaRoot } from './commands/ca-root.js';
import { registerCaRotate } from './commands/ca-rotate.js';
import { registerCaStatus } from './commands/ca-status.js';
import { registerPkiCrl } from './commands/pki-crl.js';
import { registerPkiRevoke } from './commands/pki-revoke.js';
import { registerPkiSign } from './commands/pki-sign.js';
import { registerPolicyDiff } from './commands/policy-diff.js';
import { registerPolicyEntities } from './commands/policy-entities.js';
import { registerPolicyPreview } from './commands/policy-preview.js';
import { registerPolicyPush } from './commands/policy-push.js';
import { registerPolicyRollback } from './commands/policy-rollback.js';
import { registerPolicyShow } from './commands/policy-show.js';
import { registerPolicyStores } from './commands/policy-stores.js';
import { registerPolicyTest } from './commands/policy-test.js';
import { registerPolicyVersions } from './commands/policy-versions.js';
import { registerServer } from './commands/server.js';
import { registerTenantCreate } from './commands/tenant-create.js';
import { registerWorkloadDelete } from './commands/workload-delete.js';
import { registerWorkloadList } from './commands/workload-list.js';
import { registerWorkloadRegister } from './commands/workload-register.js';
import { registerWorkloadShow } from './commands/workload-show.js';
import { registerTenantList } from './commands/tenant-list.js';
import { registerTokenCreate } from './commands/token-create.js';
import { registerTokenLookup } from './commands/token-lookup.js';
import { registerTokenRevoke } from './commands/token-revoke.js';

/** Where a freshly started server listens, so `rampart health` works with no configuration. */
const DEFAULT_ADDR = 'https://127.0.0.1:8443';

/** Exit code for an error the server reported (as opposed to a local or connection failure). */
const EXIT_API_ERROR = 2;
const EXIT_FAILURE = 1;

/**
 * Options shared by every client command, as commander parsed them.
 *
 * @example
 * ```ts
 * .action(async (flags: ClientFlags) => { const h = await cli.withClient(flags, (c) => c.health()); })
 * ```
 */
export interface ClientFlags {
  addr: string;
  token?: string;
  tokenFile?: string;
  caFile?: string;
  tenant?: string;
  format: 'json' | 'text';
}

/**
 * Writers for command output. Results go to stdout; hints for humans (such as "more results")
 * go to stderr so that stdout stays machine-readable.
 *
 * @example
 * ```ts
 * cli.out.fields([['name', tenant.name], ['created_at', tenant.created_at]]);
 * ```
 */
export interface Output {
  /** One line of text. */
  line(text: string): void;
  /** The raw API response, pretty-printed (what `--format json` shows). */
  json(value: unknown): void;
  /** A Vault-style `Key / Value` table. */
  fields(rows: ReadonlyArray<readonly [string, string]>): void;
  /** A table with upper-case headers and aligned columns. */
  table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void;
  /** A hint on stderr. */
  note(text: string): void;
}

/**
 * What command files receive from `main`: a way to declare client commands, a connected client
 * on demand, and output writers.
 *
 * @example
 * ```ts
 * export function registerHealth(program: Command, cli: Cli): void {
 *   cli.clientCommand(program, 'health', 'Check the server').action(async (flags: ClientFlags) => {
 *     cli.out.json(await cli.withClient(flags, (client) => client.health()));
 *   });
 * }
 * ```
 */
export interface Cli {
  /** Adds subcommand `nameAndArgs` to `parent` with the shared connection and format options. */
  clientCommand(parent: Command, nameAndArgs: string, description: string): Command;
  /** Builds a client from `flags` (flag > env > default), runs `use`, and always closes the client. */
  withClient<T>(flags: ClientFlags, use: (client: RampartClient) => Promise<T>): Promise<T>;
  /** Option parser for counts such as `--limit`; rejects zero, negatives and fractions as a usage error. */
  positiveInteger(value: string): number;
  /** The resolved connection settings (flag > env > default), for commands that fetch non-JSON resources. */
  connection(flags: ClientFlags): Promise<Connection>;
  out: Output;
}

/** Where and how a client command connects, as resolved from flags and environment. */
export interface Connection {
  readonly addr: string;
  readonly token: string | undefined;
  readonly caPem: Buffer | undefined;
  readonly tenant: string | undefined;
}

/**
 * Runs the CLI. `argv` is in `process.argv` form: the first two entries (node and the script)
 * are skipped. Never calls `process.exit`: it sets `process.exitCode` (0 ok, 1 usage or local
 * failure, 2 the server returned an error) so the process ends once pending output is flushed,
 * and so tests can call it directly.
 *
 * @example
 * ```ts
 * await main(['node', 'rampart', 'tenant', 'create', 'acme', '--addr', 'https://127.0.0.1:8443']);
 * ```
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'node' });
  } catch (err) {
    process.exitCode = reportFailure(err);
  }
}

function buildProgram(): Command {
  const program = new Command('rampart')
    .description('Rampart security control plane')
    .version(packageVersion())
    .showHelpAfterError()
    // Before any subcommand is added: subcommands inherit these settings when created.
    .exitOverride();

  const cli: Cli = { clientCommand, withClient, positiveInteger, connection, out: output };

  registerServer(program);
  registerHealth(program, cli);
  const tenant = program.command('tenant').description('Manage tenants');
  registerTenantCreate(tenant, cli);
  registerTenantList(tenant, cli);
  const token = program.command('token').description('Create, inspect and revoke tokens');
  registerTokenCreate(token, cli);
  registerTokenLookup(token, cli);
  registerTokenRevoke(token, cli);
  const pki = program.command('pki').description('Sign CSRs into SVIDs, revoke them, fetch the CRL');
  registerPkiSign(pki, cli);
  registerPkiRevoke(pki, cli);
  registerPkiCrl(pki, cli);
  const ca = program.command('ca').description('The CA hierarchy: status, zero-downtime rotation, root key offline (operator)');
  registerCaStatus(ca, cli);
  registerCaRotate(ca, cli);
  registerCaRoot(ca, cli);
  registerCaIntermediate(ca, cli);
  const workload = program.command('workload').description('Registration entries: which SPIFFE ID a workload gets under which agent');
  registerWorkloadRegister(workload, cli);
  registerWorkloadList(workload, cli);
  registerWorkloadShow(workload, cli);
  registerWorkloadDelete(workload, cli);
  const agent = program.command('agent').description('The node agent and its join tokens');
  registerAgentTokenCreate(agent.command('token').description('Join tokens for node attestation'), cli);
  registerAgentRun(agent);
  const audit = program.command('audit').description('Read the audit log');
  registerAuditEvents(audit, cli);
  registerAuditTail(audit, cli);
  registerAuditErase(audit, cli);
  registerAuditHold(audit, cli);
  registerAuditVerify(audit, cli);
  registerAuditWitness(audit, cli);
  const policy = program.command('policy').description('Manage Cedar policy stores: push, versions, diff, rollback, tests, entities');
  registerPolicyPush(policy, cli);
  registerPolicyVersions(policy, cli);
  registerPolicyShow(policy, cli);
  registerPolicyDiff(policy, cli);
  registerPolicyRollback(policy, cli);
  registerPolicyTest(policy, cli);
  registerPolicyEntities(policy, cli);
  registerPolicyStores(policy, cli);
  registerPolicyPreview(policy, cli);
  return program;
}

/**
 * Maps a failure to an exit code after telling the user. Commander has already printed its own
 * usage errors; API errors show the stable code so users can look it up.
 */
function reportFailure(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  if (err instanceof RampartApiError) {
    process.stderr.write(`Error: ${err.title} (${err.code}): ${err.detail}\n`);
    if (err.requestId !== undefined) process.stderr.write(`Request ID: ${err.requestId}\n`);
    return EXIT_API_ERROR;
  }
  process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_FAILURE;
}

function clientCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return parent
    .command(nameAndArgs)
    .description(description)
    .addOption(new Option('--addr <url>', 'server address').env('RAMPART_ADDR').default(DEFAULT_ADDR))
    .addOption(new Option('--token <token>', 'API token (env: RAMPART_TOKEN)').conflicts('tokenFile'))
    .addOption(new Option('--token-file <path>', 'read the API token from a file'))
    .addOption(
      new Option('--ca-file <path>', 'PEM bundle of the server CA (default: $RAMPART_DATA_DIR/ca.pem or ./data/ca.pem)').env(
        'RAMPART_CACERT',
      ),
    )
    .addOption(new Option('--tenant <name>', 'act in this tenant').env('RAMPART_TENANT'))
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'));
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

async function connection(flags: ClientFlags): Promise<Connection> {
  return { addr: flags.addr, token: await resolveToken(flags), caPem: await resolveCa(flags), tenant: flags.tenant };
}

async function withClient<T>(flags: ClientFlags, use: (client: RampartClient) => Promise<T>): Promise<T> {
  const client = new RampartClient({
    addr: flags.addr,
    token: await resolveToken(flags),
    caPem: await resolveCa(flags),
    tenant: flags.tenant,
  });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/**
 * `--token` beats `--token-file` (commander rejects both at once), and either beats
 * `RAMPART_TOKEN`. Resolved here rather than with commander's `.env()` because a file flag must
 * still win over the environment variable.
 */
async function resolveToken(flags: ClientFlags): Promise<string | undefined> {
  if (flags.token !== undefined) return flags.token;
  if (flags.tokenFile !== undefined) {
    let text: string;
    try {
      text = await readFile(flags.tokenFile, 'utf8');
    } catch (cause) {
      throw new Error(`Cannot read token file ${flags.tokenFile}: ${(cause as Error).message}`, { cause });
    }
    const token = text.trim();
    if (token === '') throw new Error(`Token file ${flags.tokenFile} is empty`);
    return token;
  }
  const fromEnv = process.env.RAMPART_TOKEN;
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

/**
 * `--ca-file` / `RAMPART_CACERT` when given; otherwise the bundle a local server wrote into its
 * data directory, so a developer running both on one machine needs no flags. With nothing found
 * the system roots apply, and a TLS error will say which flag to pass.
 */
async function resolveCa(flags: ClientFlags): Promise<Buffer | undefined> {
  const dataDir = process.env.RAMPART_DATA_DIR;
  const candidate = flags.caFile ?? path.join(dataDir !== undefined && dataDir !== '' ? dataDir : 'data', 'ca.pem');
  if (flags.caFile === undefined && !existsSync(candidate)) return undefined;
  try {
    return await readFile(candidate);
  } catch (cause) {
    throw new Error(`Cannot read CA bundle ${candidate}: ${(cause as Error).message}`, { cause });
  }
}

const output: Output = {
  line(text) {
    process.stdout.write(`${text}\n`);
  },
  json(value) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  },
  fields(rows) {
    output.table(['Key', 'Value'], [['---', '-----'], ...rows]);
  },
  table(headers, rows) {
    const all = [headers, ...rows];
    const widths = headers.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
    for (const row of all) {
      const cells = row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0)));
      process.stdout.write(`${cells.join('    ').trimEnd()}\n`);
    }
  },
  note(text) {
    process.stderr.write(`${text}\n`);
  },
};

/**
 * The version printed by `--version`, read from the package manifest. Found by walking up from
 * this module because it runs both as `src/cli/main.ts` (tsx, tests) and `dist/cli/main.js`.
 */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown; version?: unknown };
      if (parsed.name === 'rampart' && typeof parsed.version === 'string') return parsed.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return '0.0.0';
    dir = parent;
  }
}
