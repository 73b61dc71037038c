/**
 * Cedar reports source locations as UTF-8 byte offsets into the text it parsed (its spans are
 * Rust string indices). People read lines and columns, counted here from 1, the column in
 * characters as an editor shows it.
 */
export function positionOf(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, Math.max(0, byteOffset)).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: [...lines[lines.length - 1]!].length + 1 };
}
