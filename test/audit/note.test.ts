import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ed25519KeyId,
  ed25519PrivateKeyFromSeed,
  ed25519Signer,
  generateNoteKey,
  openNote,
  parseVerifierKey,
  signNote,
  signerFromPkcs8,
} from '../../src/audit/note.js';
import { errorCodeOf } from '../support/error-code.js';

/** golang.org/x/mod/sumdb/note's published vectors; see test/vectors/go-sumdb-note/README.md. */
const go = JSON.parse(readFileSync(new URL('../vectors/go-sumdb-note/vectors.json', import.meta.url), 'utf8')) as {
  signerKey: string;
  verifierKey: string;
  text: string;
  note: string;
};

/** Go's `PRIVATE+KEY+<name>+<id>+base64(0x01 ‖ seed)`. */
function goSigner(skey: string) {
  const [, , name, , ...rest] = skey.split('+') as [string, string, string, string, ...string[]];
  // The base64 may itself contain '+'.
  const raw = Buffer.from(rest.join('+'), 'base64');
  return ed25519Signer(name, ed25519PrivateKeyFromSeed(raw.subarray(1)));
}

describe('signed notes, against golang.org/x/mod/sumdb/note', () => {
  it('derives the Go verifier key (name, key id, encoding) from the Go signer key', () => {
    const signer = goSigner(go.signerKey);
    expect(signer.verifierKey).toBe(go.verifierKey);
    expect(signer.keyId).toBe(0xc74f20a3);
  });

  it('produces the Go signed note byte for byte (Ed25519 is deterministic)', () => {
    expect(signNote(go.text, goSigner(go.signerKey))).toBe(go.note);
  });

  it('opens the Go note with the Go verifier key', () => {
    const opened = openNote(go.note, parseVerifierKey(go.verifierKey));
    expect(opened.text).toBe(go.text);
    expect(opened.verified).toHaveLength(1);
  });

  it('computes the key id as SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]', () => {
    const key = Buffer.from(go.verifierKey.split('+')[2] as string, 'base64').subarray(1);
    expect(ed25519KeyId('PeterNeumann', key)).toBe(0xc74f20a3);
  });
});

describe('signed notes: rejection', () => {
  const { signer } = generateNoteKey('rampart.local/audit/test');
  const verifier = parseVerifierKey(signer.verifierKey);
  const text = 'rampart.local/audit/test\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';

  it('round-trips through a PKCS#8 export (how the key is sealed at rest)', () => {
    const fresh = generateNoteKey('example.com/log');
    const again = signerFromPkcs8('example.com/log', fresh.pkcs8);
    expect(again.verifierKey).toBe(fresh.signer.verifierKey);
    expect(openNote(signNote('x\n', again), parseVerifierKey(fresh.signer.verifierKey)).text).toBe('x\n');
  });

  it('rejects any change to the text', () => {
    const note = signNote(text, signer);
    fc.assert(
      fc.property(fc.nat({ max: text.length - 2 }), fc.constantFrom('0', '1', 'x', 'Z'), (at, ch) => {
        fc.pre(text[at] !== ch && text[at] !== '\n');
        const forged = `${text.slice(0, at)}${ch}${text.slice(at + 1)}${note.slice(text.length)}`;
        expect(errorCodeOf(() => openNote(forged, verifier))).toBe('audit.checkpoint_invalid');
      }),
    );
  });

  it('rejects a note signed only by another key, even one with the same name', () => {
    const other = generateNoteKey('rampart.local/audit/test').signer;
    expect(errorCodeOf(() => openNote(signNote(text, other), verifier))).toBe('audit.checkpoint_invalid');
  });

  it('ignores signatures by unknown keys next to a valid one', () => {
    const other = generateNoteKey('witness.example/w1').signer;
    const both = signNote(text, signer) + signNote(text, other).slice(text.length + 1);
    const opened = openNote(both, verifier);
    expect(opened.verified).toHaveLength(1);
    expect(opened.unverified.map((s) => s.name)).toEqual(['witness.example/w1']);
  });

  it('rejects malformed notes and keys', () => {
    expect(errorCodeOf(() => openNote(text, verifier))).toBe('audit.checkpoint_invalid');
    expect(errorCodeOf(() => openNote(`${text}\n— ${signer.name} !!!\n`, verifier))).toBe('audit.checkpoint_invalid');
    expect(errorCodeOf(() => openNote(`a\u0001${signNote(text, signer)}`, verifier))).toBe('audit.checkpoint_invalid');
    expect(errorCodeOf(() => signNote('no newline', signer))).toBe('audit.checkpoint_invalid');
    expect(errorCodeOf(() => parseVerifierKey(go.verifierKey.replace('c74f20a3', 'c74f20a4')))).toBe('audit.checkpoint_invalid');
    expect(errorCodeOf(() => parseVerifierKey('a b+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'))).toBe('audit.checkpoint_invalid');
    expect(errorCodeOf(() => parseVerifierKey(`${go.verifierKey}x`))).toBe('audit.checkpoint_invalid');
    expect(errorCodeOf(() => generateNoteKey('has+plus'))).toBe('audit.checkpoint_invalid');
  });
});
