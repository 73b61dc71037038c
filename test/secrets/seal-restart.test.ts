import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { resolveServerConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';

/**
 * The secrets barrier across restarts of one data directory: auto-unsealed from `unseal.key`
 * until `sys/init`, sealed at start afterwards while the rest of the control plane runs.
 */
describe('secrets barrier across restarts', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-seal-restart-'));
  const config = resolveServerConfig({ dataDir, logLevel: 'silent' }, {});
  const clock = new ManualClock(Date.now());
  const start = () => startRuntime(config, { clock, logger: createLogger({ level: 'silent' }), integrateEveryMs: 0, pruneEveryMs: 0 });
  let running: Runtime | undefined;

  afterAll(async () => {
    await running?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('auto-unseals from the key file, then after sys/init starts sealed and unseals with shares', async () => {
    running = await start();
    expect(running.secretsSeal.status()).toMatchObject({ type: 'file', sealed: false });
    const ciphertext = running.secretsSeal.barrier.encrypt('default', 'probe', Buffer.from('kept'));
    await running.close();

    running = await start();
    expect(running.secretsSeal.sealed).toBe(false);
    const init = await running.secretsSeal.init(running.stores.secretsKeyring, 3, 2);
    await running.close();

    running = await start();
    expect(running.secretsSeal.status()).toMatchObject({ type: 'shamir', initialized: true, sealed: true, t: 2, n: 3 });
    // The rest of the control plane runs while the secrets stay sealed.
    expect(running.barrier.sealed).toBe(false);
    await running.secretsSeal.unseal(running.stores.secretsKeyring, init.keys[2], false);
    await running.secretsSeal.unseal(running.stores.secretsKeyring, init.keysBase64[0], false);
    expect(running.secretsSeal.barrier.decrypt('default', 'probe', ciphertext).toString()).toBe('kept');
  });
});
