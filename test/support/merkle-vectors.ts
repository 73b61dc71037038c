import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The vendored transparency-dev/merkle test vectors (test/vectors/merkle/, see its README.md).
 * Hashes are standard base64 (Go's []byte JSON encoding) and `proof` may be null.
 */
const VECTOR_DIR = fileURLToPath(new URL('../vectors/merkle/', import.meta.url));

/** Decodes canonical standard base64, refusing anything else. */
export function b64(s: unknown): Uint8Array {
  if (typeof s !== 'string') throw new Error(`not a base64 string: ${String(s)}`);
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new Error(`not canonical standard base64: ${s}`);
  return new Uint8Array(b);
}

function jsonFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? jsonFiles(join(dir, e.name)) : e.name.endsWith('.json') ? [join(dir, e.name)] : []))
    .sort();
}

/** Every probe of one directory of the vectors, with its proof decoded and its file named relative to the vectors. */
export function loadProbes(kind: string): Record<string, unknown>[] {
  return jsonFiles(join(VECTOR_DIR, kind)).map((path) => {
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const proof = raw.proof === null ? [] : (raw.proof as unknown[]).map(b64);
    return { ...raw, proof, file: relative(VECTOR_DIR, path) };
  });
}
