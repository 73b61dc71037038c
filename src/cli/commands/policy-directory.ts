/**
 * Reads a policy directory as `rampart policy push` and `policy test` take it: every `.cedar`
 * file (subdirectories included, named by their relative path), `template-links.json`,
 * `schema.cedarschema`, the test files (`tests.yaml`, `*.test.yaml`) and, for offline tests
 * only, `entities.json`.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { TEMPLATE_LINKS_FILE } from '../../authz/policy-set.js';
import { isTestFile } from '../../authz/policy-tests.js';
import { SCHEMA_FILE } from '../../authz/policy-validation.js';

export interface PolicyDirectory {
  readonly policies: Record<string, string>;
  readonly schema: string | undefined;
  readonly tests: Record<string, string>;
  /** `entities.json`, parsed; undefined when absent. */
  readonly entities: unknown;
}

/** Throws when the directory cannot be read, has no `.cedar` file or a malformed `entities.json`. */
export async function readPolicyDirectory(dir: string): Promise<PolicyDirectory> {
  const policies: Record<string, string> = {};
  const tests: Record<string, string> = {};
  let schema: string | undefined;
  let entities: unknown;
  for (const rel of await walk(dir, '')) {
    const text = () => readFile(path.join(dir, rel), 'utf8');
    if (rel.endsWith('.cedar') || rel === TEMPLATE_LINKS_FILE) policies[rel] = await text();
    else if (rel === SCHEMA_FILE) schema = await text();
    else if (isTestFile(rel)) tests[rel] = await text();
    else if (rel === 'entities.json') {
      try {
        entities = JSON.parse(await text());
      } catch (err) {
        throw new Error(`${path.join(dir, rel)} is not JSON: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  if (Object.keys(policies).length === 0) throw new Error(`${dir} has no .cedar file`);
  return { policies, schema, tests, entities };
}

async function walk(root: string, rel: string): Promise<string[]> {
  const entries = await readdir(path.join(root, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith('.')) continue;
    const name = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await walk(root, name)));
    else if (e.isFile()) out.push(name);
  }
  return out;
}
