import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CompactRange,
  consistencyProof,
  emptyRoot,
  type Hash,
  inclusionProof,
  type LeafSource,
  leafHash,
  leafHashOfText,
  MAX_LEAVES_PER_FETCH,
  nodeHash,
  rootFromInclusionProof,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js';
import { AuditError, RampartError } from '../../src/core/errors.js';
import { b64, loadProbes } from '../support/merkle-vectors.js';

// ---------------------------------------------------------------------------------------------
// Helpers. The reference hashing here is written from RFC 6962 §2.1 independently of the module.

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** MTH(D[n]) straight from the recursive definition of RFC 6962 §2.1, over leaf hashes. */
function referenceRoot(leaves: readonly Uint8Array[]): string {
  const rec = (l: readonly Uint8Array[]): Uint8Array => {
    if (l.length === 0) return sha256();
    if (l.length === 1) return l[0] as Uint8Array;
    let k = 1;
    while (k * 2 < l.length) k *= 2;
    return sha256(Uint8Array.of(1), rec(l.slice(0, k)), rec(l.slice(k)));
  };
  return hex(rec(leaves));
}

function makeLeaves(n: number, salt = 0): Hash[] {
  return Array.from({ length: n }, (_, i) => leafHash(utf8(`entry ${salt}/${i}`)));
}

/** A LeafSource over an array that records every request, to check what proof generation reads. */
function recordingSource(leaves: readonly Hash[], async = false): { fetch: LeafSource; calls: [number, number][] } {
  const calls: [number, number][] = [];
  const fetch: LeafSource = (start, end) => {
    calls.push([start, end]);
    const out = leaves.slice(start, end);
    return async ? Promise.resolve(out) : out;
  };
  return { fetch, calls };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectAuditError(err: unknown, code: AuditError['code']): AuditError {
  expect(err).toBeInstanceOf(AuditError);
  expect((err as AuditError).code).toBe(code);
  return err as AuditError;
}

function flipByte(proof: readonly Hash[], which: number, byte: number, mask: number): Hash[] {
  return proof.map((h, i) => {
    if (i !== which) return h;
    const c = Uint8Array.from(h);
    c[byte] = (c[byte] as number) ^ mask;
    return c;
  });
}

// ---------------------------------------------------------------------------------------------
// Reference tree of transparency-dev/merkle, `testonly/constants.go` at revision
// 417fb0c314750d94e53942e9f92e79b6d35915db (LeafInputs and RootHashes). The vendored vectors'
// happy paths are proofs in this tree.

const REFERENCE_LEAF_INPUTS = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(unhex);

const REFERENCE_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const referenceLeaves = REFERENCE_LEAF_INPUTS.map(leafHash);

// ---------------------------------------------------------------------------------------------
// Vendored vectors: test/vectors/merkle/, copied unchanged from github.com/transparency-dev/merkle
// `testdata/` at revision 417fb0c314750d94e53942e9f92e79b6d35915db (see its README.md). Upstream
// runs them in `proof/verify_test.go`. Hashes are standard base64 (Go's []byte JSON encoding) and
// `proof` may be null.

interface InclusionProbe {
  file: string;
  leafIdx: number;
  treeSize: number;
  root: Uint8Array;
  leafHash: Uint8Array;
  proof: Uint8Array[];
  desc: string;
  wantErr: boolean;
}

interface ConsistencyProbe {
  file: string;
  size1: number;
  size2: number;
  root1: Uint8Array;
  root2: Uint8Array;
  proof: Uint8Array[];
  desc: string;
  wantErr: boolean;
}

const inclusionProbes: InclusionProbe[] = loadProbes('inclusion').map((r) => ({
  ...(r as unknown as InclusionProbe),
  root: b64(r.root),
  leafHash: b64(r.leafHash),
}));

const consistencyProbes: ConsistencyProbe[] = loadProbes('consistency').map((r) => ({
  ...(r as unknown as ConsistencyProbe),
  root1: b64(r.root1),
  root2: b64(r.root2),
}));

/**
 * Probes where Rampart deliberately disagrees with upstream. Upstream compares the two roots of an
 * equal-size consistency check without checking that they are hashes at all, so it accepts the
 * 12-byte "roots" `don't care 2`. Rampart refuses any root that is not 32 bytes: a verifier that
 * says "ok" about a value that cannot be a tree root is giving auditors false evidence.
 */
const DEVIATIONS: Record<string, AuditError['code']> = {
  'consistency/additional/sizes-are-equal-one-and-proof-is-empty.json': 'audit.proof_invalid',
};

describe('transparency-dev/merkle vectors', () => {
  it('loads every vendored probe', () => {
    expect(inclusionProbes).toHaveLength(98);
    expect(consistencyProbes).toHaveLength(98);
    expect(inclusionProbes.filter((p) => !p.wantErr)).toHaveLength(6);
    expect(consistencyProbes.filter((p) => !p.wantErr)).toHaveLength(6);
    for (const [file] of Object.entries(DEVIATIONS)) {
      const probe = [...inclusionProbes, ...consistencyProbes].find((p) => p.file === file);
      expect(probe?.wantErr, file).toBe(false);
    }
  });

  describe('inclusion', () => {
    for (const p of inclusionProbes) {
      const deviation = DEVIATIONS[p.file];
      if (!p.wantErr && deviation === undefined) {
        it(`${p.file} verifies (${p.desc})`, () => {
          expect(() => verifyInclusion(p.leafIdx, p.treeSize, p.leafHash, p.proof, p.root)).not.toThrow();
        });
      } else {
        const code = deviation ?? (p.leafIdx >= p.treeSize ? 'audit.range_invalid' : 'audit.proof_invalid');
        it(`${p.file} is rejected with ${code} (${p.desc})`, () => {
          expectAuditError(
            thrown(() => verifyInclusion(p.leafIdx, p.treeSize, p.leafHash, p.proof, p.root)),
            code,
          );
        });
      }
    }
  });

  describe('consistency', () => {
    for (const p of consistencyProbes) {
      const deviation = DEVIATIONS[p.file];
      if (!p.wantErr && deviation === undefined) {
        it(`${p.file} verifies (${p.desc})`, () => {
          expect(() => verifyConsistency(p.size1, p.size2, p.proof, p.root1, p.root2)).not.toThrow();
        });
      } else {
        const code =
          deviation ?? (p.size1 > p.size2 || p.size1 === 0 ? 'audit.range_invalid' : 'audit.proof_invalid');
        it(`${p.file} is rejected with ${code} (${p.desc})`, () => {
          expectAuditError(
            thrown(() => verifyConsistency(p.size1, p.size2, p.proof, p.root1, p.root2)),
            code,
          );
        });
      }
    }
  });

  it('the happy-path proofs are exactly the proofs this module generates for the reference tree', async () => {
    const source = recordingSource(referenceLeaves).fetch;
    const incl = inclusionProbes.filter((p) => !p.wantErr && /^inclusion\/\d\//.test(p.file));
    const cons = consistencyProbes.filter((p) => !p.wantErr && /^consistency\/\d\//.test(p.file));
    expect(incl).toHaveLength(5);
    expect(cons).toHaveLength(5);
    for (const p of incl) {
      expect(hex(p.root), p.file).toBe(REFERENCE_ROOTS[p.treeSize]);
      expect(hex(p.leafHash), p.file).toBe(hex(referenceLeaves[p.leafIdx] as Hash));
      const proof = await inclusionProof(p.leafIdx, p.treeSize, source);
      expect(proof.map(hex), p.file).toEqual(p.proof.map(hex));
    }
    for (const p of cons) {
      expect(hex(p.root1), p.file).toBe(REFERENCE_ROOTS[p.size1]);
      expect(hex(p.root2), p.file).toBe(REFERENCE_ROOTS[p.size2]);
      const proof = await consistencyProof(p.size1, p.size2, source);
      expect(proof.map(hex), p.file).toEqual(p.proof.map(hex));
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('hashing (RFC 6962 §2.1)', () => {
  it('uses the 0x00 / 0x01 domain-separation prefixes', () => {
    const a = utf8('a');
    expect(hex(leafHash(a))).toBe(hex(sha256(Uint8Array.of(0), a)));
    const l = leafHash(utf8('l'));
    const r = leafHash(utf8('r'));
    expect(hex(nodeHash(l, r))).toBe(hex(sha256(Uint8Array.of(1), l, r)));
    expect(hex(nodeHash(l, r))).not.toBe(hex(nodeHash(r, l)));
  });

  it('matches the upstream reference tree at every size 0..8', () => {
    expect(hex(emptyRoot())).toBe(REFERENCE_ROOTS[0]);
    const range = CompactRange.empty();
    expect(hex(range.root())).toBe(REFERENCE_ROOTS[0]);
    for (let n = 1; n <= 8; n++) {
      expect(hex(rootFromLeafHashes(referenceLeaves.slice(0, n)))).toBe(REFERENCE_ROOTS[n]);
      range.append(referenceLeaves[n - 1] as Hash);
      expect(hex(range.root())).toBe(REFERENCE_ROOTS[n]);
    }
  });
});

describe('CompactRange', () => {
  it('root equals the recursive MTH and rootFromLeafHashes at every size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.nat(), (n, salt) => {
        const leaves = makeLeaves(n, salt);
        const range = CompactRange.empty();
        expect(hex(range.root())).toBe(referenceRoot([]));
        for (let i = 0; i < n; i++) {
          range.append(leaves[i] as Hash);
          expect(range.size).toBe(i + 1);
          const want = referenceRoot(leaves.slice(0, i + 1));
          expect(hex(range.root())).toBe(want);
          expect(hex(rootFromLeafHashes(leaves.slice(0, i + 1)))).toBe(want);
        }
      }),
      { numRuns: 15 },
    );
  });

  it('keeps one hash per set bit of size', () => {
    const range = CompactRange.empty();
    for (const leaf of makeLeaves(37)) range.append(leaf);
    // 37 = 0b100101: perfect subtrees of 32, 4 and 1 leaves, largest first.
    const json = range.toJSON();
    expect(json.size).toBe(37);
    expect(json.hashes).toHaveLength(3);
    const leaves = makeLeaves(37);
    expect(json.hashes).toEqual([
      referenceRoot(leaves.slice(0, 32)),
      referenceRoot(leaves.slice(32, 36)),
      referenceRoot(leaves.slice(36, 37)),
    ]);
  });

  it('root() does not mutate the range and returns a copy', () => {
    const range = CompactRange.empty();
    for (const leaf of makeLeaves(1)) range.append(leaf);
    const before = range.toJSON();
    const r1 = range.root();
    r1.fill(0);
    expect(range.toJSON()).toEqual(before);
    expect(hex(range.root())).toBe(referenceRoot(makeLeaves(1)));
    for (const leaf of makeLeaves(6).slice(1)) range.append(leaf);
    const json = range.toJSON();
    range.root();
    range.root();
    expect(range.toJSON()).toEqual(json);
    expect(range.size).toBe(6);
  });

  it('does not alias the appended leaf', () => {
    const leaf = Uint8Array.from(makeLeaves(1)[0] as Hash);
    const range = CompactRange.empty();
    range.append(leaf);
    leaf.fill(0);
    expect(hex(range.root())).toBe(referenceRoot(makeLeaves(1)));
  });

  it('toJSON/fromJSON round-trips and the restored range keeps growing identically', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 40 }), (n, more) => {
        const leaves = makeLeaves(n + more, 7);
        const a = CompactRange.empty();
        for (const l of leaves.slice(0, n)) a.append(l);
        const wire = JSON.parse(JSON.stringify(a.toJSON())) as { size: number; hashes: string[] };
        const b = CompactRange.fromJSON(wire);
        expect(b.size).toBe(n);
        expect(b.toJSON()).toEqual(a.toJSON());
        expect(hex(b.root())).toBe(hex(a.root()));
        for (const l of leaves.slice(n)) {
          a.append(l);
          b.append(l);
        }
        expect(hex(b.root())).toBe(referenceRoot(leaves));
        expect(b.toJSON()).toEqual(a.toJSON());
      }),
    );
  });

  it('fromJSON rejects malformed state with audit.range_invalid', () => {
    const good = (() => {
      const r = CompactRange.empty();
      for (const l of makeLeaves(5)) r.append(l);
      return r.toJSON();
    })();
    expect(good.hashes).toHaveLength(2);
    const h = good.hashes[0] as string;
    const bad: unknown[] = [
      null,
      'x',
      { size: 5 },
      { size: 5, hashes: 'ab' },
      { size: 5, hashes: [h] },
      { size: 5, hashes: [h, h, h] },
      { size: 4, hashes: good.hashes },
      { size: 0, hashes: [h] },
      { size: -1, hashes: [] },
      { size: 1.5, hashes: [h] },
      { size: '5', hashes: good.hashes },
      { size: Number.NaN, hashes: [] },
      { size: 2 ** 53, hashes: [h] },
      { size: 5, hashes: [h, h.slice(2)] },
      { size: 5, hashes: [h, `${h}00`] },
      { size: 5, hashes: [h, `${h.slice(0, 63)}g`] },
      { size: 5, hashes: [h, 42] },
    ];
    for (const j of bad) {
      expectAuditError(
        thrown(() => CompactRange.fromJSON(j as { size: number; hashes: string[] })),
        'audit.range_invalid',
      );
    }
    expect(CompactRange.fromJSON(good).toJSON()).toEqual(good);
  });

  it('refuses a leaf hash of the wrong length', () => {
    const range = CompactRange.empty();
    const err = thrown(() => range.append(new Uint8Array(31)));
    expect(err).toBeInstanceOf(RampartError);
    expect((err as RampartError).code).toBe('server.internal');
    expect(range.size).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

const treeAndIndex = fc
  .integer({ min: 1, max: 300 })
  .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }), fc.nat()));

const twoSizes = fc
  .integer({ min: 1, max: 300 })
  .chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n), fc.nat()));

describe('inclusion proofs (RFC 9162 §2.1.3)', () => {
  it('every proof in every tree up to 64 leaves verifies', async () => {
    const leaves = makeLeaves(64);
    const { fetch } = recordingSource(leaves);
    for (let n = 1; n <= 64; n++) {
      const root = rootFromLeafHashes(leaves.slice(0, n));
      for (let i = 0; i < n; i++) {
        const proof = await inclusionProof(i, n, fetch);
        verifyInclusion(i, n, leaves[i] as Hash, proof, root);
        expect(hex(rootFromInclusionProof(i, n, leaves[i] as Hash, proof))).toBe(hex(root));
      }
    }
  });

  it('generated proofs verify against rootFromLeafHashes, reading each other leaf exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(treeAndIndex, fc.boolean(), async ([n, index, salt], async) => {
        const leaves = makeLeaves(n, salt);
        const root = rootFromLeafHashes(leaves);
        expect(hex(root)).toBe(referenceRoot(leaves));
        const { fetch, calls } = recordingSource(leaves, async);
        const proof = await inclusionProof(index, n, fetch);
        verifyInclusion(index, n, leaves[index] as Hash, proof, root);

        const read = calls.flatMap(([s, e]) => Array.from({ length: e - s }, (_, k) => s + k)).sort((a, b) => a - b);
        expect(read).toEqual(Array.from({ length: n }, (_, k) => k).filter((k) => k !== index));
        expect(calls.length).toBe(proof.length);
      }),
    );
  });

  it('flipping any bit pattern in any byte of any proof hash is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        treeAndIndex.filter(([n]) => n >= 2),
        fc.nat(),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 1, max: 255 }),
        async ([n, index, salt], which, byte, mask) => {
          const leaves = makeLeaves(n, salt);
          const root = rootFromLeafHashes(leaves);
          const proof = await inclusionProof(index, n, recordingSource(leaves).fetch);
          const bad = flipByte(proof, which % proof.length, byte, mask);
          const err = expectAuditError(
            thrown(() => verifyInclusion(index, n, leaves[index] as Hash, bad, root)),
            'audit.proof_invalid',
          );
          expect(err.details?.expectedRoot).toBe(hex(root));
          expect(err.details?.computedRoot).not.toBe(hex(root));
          // The untouched proof still verifies: the failure is the flipped byte's doing.
          verifyInclusion(index, n, leaves[index] as Hash, proof, root);
          // So does corrupting the leaf or the root.
          expectAuditError(
            thrown(() => verifyInclusion(index, n, flipByte([leaves[index] as Hash], 0, byte, mask)[0] as Hash, proof, root)),
            'audit.proof_invalid',
          );
          expectAuditError(
            thrown(() => verifyInclusion(index, n, leaves[index] as Hash, proof, flipByte([root], 0, byte, mask)[0] as Hash)),
            'audit.proof_invalid',
          );
        },
      ),
    );
  });

  it('a proof does not verify for another index, or for another size against that size’s root', async () => {
    await fc.assert(
      fc.asyncProperty(treeAndIndex, fc.integer({ min: 1, max: 300 }), fc.nat(), async ([n, index, salt], size2, other) => {
        const leaves = makeLeaves(Math.max(n, size2), salt);
        const root = rootFromLeafHashes(leaves.slice(0, n));
        const proof = await inclusionProof(index, n, recordingSource(leaves).fetch);
        const leaf = leaves[index] as Hash;

        const j = other % n;
        if (j !== index) {
          expect(thrown(() => verifyInclusion(j, n, leaf, proof, root))).toBeInstanceOf(AuditError);
        }
        if (size2 !== n) {
          const root2 = rootFromLeafHashes(leaves.slice(0, size2));
          const err = thrown(() => verifyInclusion(index, size2, leaf, proof, root2));
          expectAuditError(err, index >= size2 ? 'audit.range_invalid' : 'audit.proof_invalid');
        }
        expectAuditError(thrown(() => verifyInclusion(n + (other % 3), n, leaf, proof, root)), 'audit.range_invalid');
      }),
    );
  });

  it('reads the log in bounded chunks and never rereads a leaf', async () => {
    const n = 3 * MAX_LEAVES_PER_FETCH + 5;
    const leaves = makeLeaves(n);
    const index = MAX_LEAVES_PER_FETCH + 17;
    const { fetch, calls } = recordingSource(leaves, true);
    const proof = await inclusionProof(index, n, fetch);
    verifyInclusion(index, n, leaves[index] as Hash, proof, rootFromLeafHashes(leaves));
    expect(calls.every(([s, e]) => e > s && e - s <= MAX_LEAVES_PER_FETCH)).toBe(true);
    expect(calls.reduce((t, [s, e]) => t + (e - s), 0)).toBe(n - 1);
  });

  it('handles indices and sizes beyond 32 bits', () => {
    // The last leaf of a tree of 2^40 + 1 leaves: the proof is the root of the first 2^40 leaves.
    const left = sha256(utf8('left subtree of 2^40 leaves'));
    const leaf = leafHash(utf8('leaf 2^40'));
    const root = sha256(Uint8Array.of(1), left, leaf);
    verifyInclusion(2 ** 40, 2 ** 40 + 1, leaf, [left], root);
    expectAuditError(thrown(() => verifyInclusion(2 ** 40, 2 ** 40 + 2, leaf, [left], root)), 'audit.proof_invalid');

    // Leaf 2^32 of 2^34: 34 inner siblings, all on the right except at level 32, where bit 32 of
    // the index puts the sibling on the left.
    const siblings = Array.from({ length: 34 }, (_, i) => sha256(utf8(`sibling ${i}`)));
    let expected: Uint8Array = leaf;
    siblings.forEach((s, i) => {
      expected = i === 32 ? sha256(Uint8Array.of(1), s, expected) : sha256(Uint8Array.of(1), expected, s);
    });
    verifyInclusion(2 ** 32, 2 ** 34, leaf, siblings, expected);
    expectAuditError(thrown(() => verifyInclusion(0, 2 ** 34, leaf, siblings, expected)), 'audit.proof_invalid');

    const err = expectAuditError(thrown(() => verifyInclusion(0, 2 ** 52, leaf, [left], root)), 'audit.proof_invalid');
    expect(err.details).toMatchObject({ proofLength: 1, expectedProofLength: 52 });
  });

  it('rejects malformed arguments with a coded error, never a crash', async () => {
    const leaves = makeLeaves(5);
    const root = rootFromLeafHashes(leaves);
    const proof = await inclusionProof(2, 5, recordingSource(leaves).fetch);
    const leaf = leaves[2] as Hash;
    verifyInclusion(2, 5, leaf, proof, root);
    const badCounts: unknown[] = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '2', null, undefined, 2n];
    for (const v of badCounts) {
      expectAuditError(thrown(() => verifyInclusion(v as number, 5, leaf, proof, root)), 'audit.range_invalid');
      expectAuditError(thrown(() => verifyInclusion(2, v as number, leaf, proof, root)), 'audit.range_invalid');
      expectAuditError(await rejected(inclusionProof(v as number, 5, recordingSource(leaves).fetch)), 'audit.range_invalid');
    }
    expectAuditError(thrown(() => verifyInclusion(5, 5, leaf, proof, root)), 'audit.range_invalid');
    expectAuditError(await rejected(inclusionProof(5, 5, recordingSource(leaves).fetch)), 'audit.range_invalid');
    expectAuditError(await rejected(inclusionProof(0, 0, recordingSource(leaves).fetch)), 'audit.range_invalid');

    const notHashes: unknown[] = [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), 'ab'.repeat(32), Array(32).fill(0), null];
    for (const h of notHashes) {
      expectAuditError(thrown(() => verifyInclusion(2, 5, h as Hash, proof, root)), 'audit.proof_invalid');
      expectAuditError(thrown(() => verifyInclusion(2, 5, leaf, proof, h as Hash)), 'audit.proof_invalid');
      expectAuditError(thrown(() => verifyInclusion(2, 5, leaf, [h as Hash, ...proof.slice(1)], root)), 'audit.proof_invalid');
    }
    expectAuditError(thrown(() => verifyInclusion(2, 5, leaf, null as unknown as Hash[], root)), 'audit.proof_invalid');
    expectAuditError(thrown(() => verifyInclusion(2, 5, leaf, [...proof, proof[0] as Hash], root)), 'audit.proof_invalid');
    expectAuditError(thrown(() => verifyInclusion(2, 5, leaf, proof.slice(1), root)), 'audit.proof_invalid');
  });

  it('reports a short read from the log as audit.range_invalid', async () => {
    const leaves = makeLeaves(5);
    expectAuditError(await rejected(inclusionProof(0, 8, recordingSource(leaves).fetch)), 'audit.range_invalid');
  });
});

describe('consistency proofs (RFC 9162 §2.1.4)', () => {
  it('every proof between trees up to 64 leaves verifies', async () => {
    const leaves = makeLeaves(64);
    const roots = Array.from({ length: 65 }, (_, n) => rootFromLeafHashes(leaves.slice(0, n)));
    const { fetch } = recordingSource(leaves);
    for (let n = 1; n <= 64; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = await consistencyProof(m, n, fetch);
        verifyConsistency(m, n, proof, roots[m] as Hash, roots[n] as Hash);
      }
    }
  });

  it('generated proofs verify and read at most size2 leaves, none twice', async () => {
    await fc.assert(
      fc.asyncProperty(twoSizes, fc.boolean(), async ([m, n, salt], async) => {
        const leaves = makeLeaves(n, salt);
        const root1 = rootFromLeafHashes(leaves.slice(0, m));
        const root2 = rootFromLeafHashes(leaves);
        expect(hex(root1)).toBe(referenceRoot(leaves.slice(0, m)));
        const { fetch, calls } = recordingSource(leaves, async);
        const proof = await consistencyProof(m, n, fetch);
        verifyConsistency(m, n, proof, root1, root2);
        if (m === n) expect(proof).toEqual([]);

        const read = calls.flatMap(([s, e]) => Array.from({ length: e - s }, (_, k) => s + k));
        expect(new Set(read).size).toBe(read.length);
        expect(read.every((k) => k >= 0 && k < n)).toBe(true);
      }),
    );
  });

  it('flipping any byte of any proof hash, or of either root, is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        twoSizes.filter(([m, n]) => m < n),
        fc.nat(),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 1, max: 255 }),
        async ([m, n, salt], which, byte, mask) => {
          const leaves = makeLeaves(n, salt);
          const root1 = rootFromLeafHashes(leaves.slice(0, m));
          const root2 = rootFromLeafHashes(leaves);
          const proof = await consistencyProof(m, n, recordingSource(leaves).fetch);
          const bad = flipByte(proof, which % proof.length, byte, mask);
          const err = expectAuditError(thrown(() => verifyConsistency(m, n, bad, root1, root2)), 'audit.proof_invalid');
          expect([hex(root1), hex(root2)]).toContain(err.details?.expectedRoot);
          verifyConsistency(m, n, proof, root1, root2);
          const flip = (h: Hash): Hash => flipByte([h], 0, byte, mask)[0] as Hash;
          expectAuditError(thrown(() => verifyConsistency(m, n, proof, flip(root1), root2)), 'audit.proof_invalid');
          expectAuditError(thrown(() => verifyConsistency(m, n, proof, root1, flip(root2))), 'audit.proof_invalid');
        },
      ),
    );
  });

  it('a proof does not verify for other sizes against those sizes’ roots', async () => {
    await fc.assert(
      fc.asyncProperty(twoSizes, fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), async ([m, n, salt], m2, n2) => {
        const leaves = makeLeaves(300, salt);
        const root = (k: number): Hash => rootFromLeafHashes(leaves.slice(0, k));
        const proof = await consistencyProof(m, n, recordingSource(leaves).fetch);
        verifyConsistency(m, n, proof, root(m), root(n));
        if (m2 !== m) {
          const code = m2 > n ? 'audit.range_invalid' : 'audit.proof_invalid';
          expectAuditError(thrown(() => verifyConsistency(m2, n, proof, root(m2), root(n))), code);
        }
        if (n2 !== n) {
          const code = m > n2 ? 'audit.range_invalid' : 'audit.proof_invalid';
          expectAuditError(thrown(() => verifyConsistency(m, n2, proof, root(m), root(n2))), code);
        }
      }),
    );
  });

  it('handles sizes beyond 32 bits', () => {
    // From a perfect tree of 2^40 leaves to 2^40 + 1: the proof is the new leaf alone.
    const root1 = sha256(utf8('root of 2^40 leaves'));
    const leaf = leafHash(utf8('leaf 2^40'));
    const root2 = sha256(Uint8Array.of(1), root1, leaf);
    verifyConsistency(2 ** 40, 2 ** 40 + 1, [leaf], root1, root2);
    expectAuditError(thrown(() => verifyConsistency(2 ** 40, 2 ** 40 + 1, [leaf], leaf, root2)), 'audit.proof_invalid');

    // From 2^40 + 1 to 2^40 + 2 leaves: the old last leaf, its new sibling, then the root of the
    // first 2^40 leaves, which is a left sibling at level 40.
    const x = sha256(utf8('root of the first 2^40 leaves'));
    const a = leafHash(utf8('leaf 2^40'));
    const b = leafHash(utf8('leaf 2^40 + 1'));
    const old = sha256(Uint8Array.of(1), x, a);
    const grown = sha256(Uint8Array.of(1), x, sha256(Uint8Array.of(1), a, b));
    verifyConsistency(2 ** 40 + 1, 2 ** 40 + 2, [a, b, x], old, grown);
    expectAuditError(thrown(() => verifyConsistency(2 ** 40 + 1, 2 ** 40 + 2, [a, b, x], grown, grown)), 'audit.proof_invalid');
    const err = expectAuditError(
      thrown(() => verifyConsistency(2 ** 40 + 1, 2 ** 52 + 3, [a, b, x], old, grown)),
      'audit.proof_invalid',
    );
    // SUBPROOF(2^40 + 1, D[2^52 + 3]): 11 right siblings (levels 51..41), [0, 2^40), 40 right
    // siblings inside [2^40, 2^41), leaf 2^40 itself, and MTH(D[2^52 : 2^52 + 3]).
    expect(err.details).toMatchObject({ proofLength: 3, expectedProofLength: 54 });
  });

  it('follows transparency-dev/merkle on the edge cases', async () => {
    const leaves = makeLeaves(4);
    const r = (k: number): Hash => rootFromLeafHashes(leaves.slice(0, k));
    const src = recordingSource(leaves).fetch;
    // Equal sizes: empty proof and identical roots.
    verifyConsistency(3, 3, [], r(3), r(3));
    expect(await consistencyProof(3, 3, src)).toEqual([]);
    expectAuditError(thrown(() => verifyConsistency(3, 3, [], r(3), r(2))), 'audit.proof_invalid');
    expectAuditError(thrown(() => verifyConsistency(3, 3, [r(1)], r(3), r(3))), 'audit.proof_invalid');
    // Growth needs a non-empty proof.
    expectAuditError(thrown(() => verifyConsistency(2, 4, [], r(2), r(4))), 'audit.proof_invalid');
    // From the empty tree: meaningless, refused whatever the proof.
    expectAuditError(thrown(() => verifyConsistency(0, 0, [], emptyRoot(), emptyRoot())), 'audit.range_invalid');
    expectAuditError(thrown(() => verifyConsistency(0, 4, [], emptyRoot(), r(4))), 'audit.range_invalid');
    expectAuditError(await rejected(consistencyProof(0, 4, src)), 'audit.range_invalid');
    // Shrinking.
    expectAuditError(thrown(() => verifyConsistency(4, 3, [], r(4), r(3))), 'audit.range_invalid');
    expectAuditError(await rejected(consistencyProof(4, 3, src)), 'audit.range_invalid');
  });

  it('rejects malformed arguments with a coded error, never a crash', async () => {
    const leaves = makeLeaves(7);
    const r3 = rootFromLeafHashes(leaves.slice(0, 3));
    const r7 = rootFromLeafHashes(leaves);
    const proof = await consistencyProof(3, 7, recordingSource(leaves).fetch);
    verifyConsistency(3, 7, proof, r3, r7);
    for (const v of [-1, 0.5, Number.NaN, Number.NEGATIVE_INFINITY, 2 ** 53, '3', null, 3n] as unknown[]) {
      expectAuditError(thrown(() => verifyConsistency(v as number, 7, proof, r3, r7)), 'audit.range_invalid');
      expectAuditError(thrown(() => verifyConsistency(3, v as number, proof, r3, r7)), 'audit.range_invalid');
      expectAuditError(await rejected(consistencyProof(3, v as number, recordingSource(leaves).fetch)), 'audit.range_invalid');
    }
    for (const h of [new Uint8Array(31), new Uint8Array(0), 'x', undefined] as unknown[]) {
      expectAuditError(thrown(() => verifyConsistency(3, 7, proof, h as Hash, r7)), 'audit.proof_invalid');
      expectAuditError(thrown(() => verifyConsistency(3, 7, proof, r3, h as Hash)), 'audit.proof_invalid');
      expectAuditError(thrown(() => verifyConsistency(3, 7, [...proof.slice(0, -1), h as Hash], r3, r7)), 'audit.proof_invalid');
    }
    expectAuditError(thrown(() => verifyConsistency(3, 7, 'proof' as unknown as Hash[], r3, r7)), 'audit.proof_invalid');
    const err = expectAuditError(thrown(() => verifyConsistency(3, 7, [...proof, r3], r3, r7)), 'audit.proof_invalid');
    expect(err.details).toMatchObject({ proofLength: proof.length + 1, expectedProofLength: proof.length });
  });
});

describe('leafHashOfText', () => {
  it('equals leafHash of the UTF-8 encoding, for any text and any length', () => {
    const utf8 = new TextEncoder();
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.repeat(200)), fc.string({ unit: 'grapheme' })), (text) => {
        expect(Buffer.from(leafHashOfText(text)).toString('hex')).toBe(Buffer.from(leafHash(utf8.encode(text))).toString('hex'));
      }),
      { numRuns: 50 },
    );
    // Lone surrogates are encoded as U+FFFD by both, as TextEncoder does.
    expect(Buffer.from(leafHashOfText('a\ud800b')).equals(Buffer.from(leafHash(utf8.encode('a\ud800b'))))).toBe(true);
  }, 30_000);

  it('does not let one hash disturb another (shared scratch buffers)', () => {
    const a = leafHashOfText('x'.repeat(10_000));
    const copy = Buffer.from(a).toString('hex');
    leafHashOfText('y');
    nodeHash(a, a);
    expect(Buffer.from(a).toString('hex')).toBe(copy);
  });
});
