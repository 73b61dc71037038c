import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint } from '../../src/audit/checkpoint.js';
import { generateNoteKey, parseVerifierKey, signNote } from '../../src/audit/note.js';
import { errorCodeOf } from '../support/error-code.js';

const root = new Uint8Array(32).map((_, i) => i);

describe('tlog-checkpoint format', () => {
  it('is origin, decimal size and base64 root, one per line', () => {
    expect(formatCheckpoint({ origin: 'rampart.local/audit/ab', size: 1234, rootHash: root })).toBe(
      `rampart.local/audit/ab\n1234\n${Buffer.from(root).toString('base64')}\n`,
    );
  });

  it('round-trips any size and root', () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (size, hash) => {
        const cp = parseCheckpoint(formatCheckpoint({ origin: 'o.example/x', size, rootHash: hash }));
        expect(cp.size).toBe(size);
        expect(Buffer.from(cp.rootHash).equals(Buffer.from(hash))).toBe(true);
      }),
    );
  });

  it('keeps extension lines', () => {
    expect(parseCheckpoint(`o\n1\n${Buffer.from(root).toString('base64')}\next one\n`).extensions).toEqual(['ext one']);
  });

  it('refuses non-canonical bodies', () => {
    const b64 = Buffer.from(root).toString('base64');
    for (const bad of [`o\n01\n${b64}\n`, `o\n-1\n${b64}\n`, `o\n1\n${b64}`, `\n1\n${b64}\n`, 'o\n1\nAAAA\n', `o\n1\n${b64}\n\n`, `o\n1e3\n${b64}\n`]) {
      expect(errorCodeOf(() => parseCheckpoint(bad)), JSON.stringify(bad)).toBe('audit.checkpoint_invalid');
    }
  });
});

describe('signed checkpoints', () => {
  const { signer } = generateNoteKey('rampart.local/audit/0011223344556677');
  const verifier = parseVerifierKey(signer.verifierKey);

  it('are signed with the origin as the key name and open with the verifier key', () => {
    const note = signCheckpoint({ size: 7, rootHash: root }, signer);
    expect(note.split('\n')[4]).toMatch(/^— rampart\.local\/audit\/0011223344556677 [A-Za-z0-9+/]{91}=$/);
    expect(openCheckpoint(note, verifier).size).toBe(7);
  });

  it('refuse a checkpoint whose origin is not the key name', () => {
    const note = signNote(formatCheckpoint({ origin: 'another.log/x', size: 7, rootHash: root }), signer);
    expect(errorCodeOf(() => openCheckpoint(note, verifier))).toBe('audit.checkpoint_invalid');
  });
});
