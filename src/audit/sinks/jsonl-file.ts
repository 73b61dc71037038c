import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type AuditSink, type DeliveredEvent, deliveredJson } from '../sink.js';

export interface JsonlFileSinkOptions {
  readonly name: string;
  /** The live file; rotated files are `<path>.1` (newest) … `<path>.<keep>` (oldest). */
  readonly path: string;
  /** Rotate before a line would take the live file past this size. */
  readonly maxBytes: number;
  /** Rotated files kept; older ones are deleted. */
  readonly keep: number;
}

const TAIL_CHUNK = 64 * 1024;

/**
 * Appends one JSON line per event, `{"leaf_index":N,"event":{…}}`, for log shippers (Filebeat,
 * Fluent Bit, Vector) to tail. A batch counts as delivered only after fsync, so a power loss
 * can cost the cursor nothing. A line is never split across files: rotation happens between lines.
 */
export class JsonlFileSink implements AuditSink {
  readonly name: string;
  readonly #path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #file: FileHandle | undefined;
  #size = 0;

  constructor(options: JsonlFileSinkOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) throw new RangeError('maxBytes must be a positive integer');
    if (!Number.isSafeInteger(options.keep) || options.keep < 1) throw new RangeError('keep must be a positive integer');
    this.name = options.name;
    this.#path = options.path;
    this.#maxBytes = options.maxBytes;
    this.#keep = options.keep;
  }

  async deliver(batch: readonly DeliveredEvent[]): Promise<void> {
    try {
      await this.#open();
      let chunk: Buffer[] = [];
      let chunkBytes = 0;
      for (const e of batch) {
        const line = Buffer.from(`${deliveredJson(e)}\n`, 'utf8');
        if (this.#size + chunkBytes > 0 && this.#size + chunkBytes + line.length > this.#maxBytes) {
          await this.#writeDurably(chunk, chunkBytes);
          chunk = [];
          chunkBytes = 0;
          await this.#rotate();
        }
        chunk.push(line);
        chunkBytes += line.length;
      }
      await this.#writeDurably(chunk, chunkBytes);
    } catch (err) {
      // The file's state is unknown (a short write, a failed rename): start over from disk next time.
      await this.#closeFile();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#closeFile();
  }

  async #writeDurably(chunk: readonly Buffer[], bytes: number): Promise<void> {
    if (bytes === 0) return;
    const file = await this.#open();
    // 'a' mode: every write lands at the end of the file, whatever another writer did.
    await file.writev(chunk as Buffer[]);
    await file.sync();
    this.#size += bytes;
  }

  /**
   * Opens the live file for appending. A crash can leave a partial last line that was never
   * reported delivered (the cursor did not move), so it is cut off: the retry writes it whole.
   */
  async #open(): Promise<FileHandle> {
    if (this.#file) return this.#file;
    // Group-readable, for a log shipper in the file's group; events hold no secrets by design.
    const file = await open(this.#path, 'a+', 0o640);
    try {
      const { size } = await file.stat();
      this.#size = await completeLinesLength(file, size);
      if (this.#size !== size) {
        await file.truncate(this.#size);
        await file.sync();
      }
    } catch (err) {
      await file.close();
      throw err;
    }
    this.#file = file;
    return file;
  }

  /** `<path>.<keep>` is deleted, `.k` becomes `.k+1`, the live file becomes `.1`. */
  async #rotate(): Promise<void> {
    await this.#closeFile();
    // Rotated files are contiguous from .1, so only those that exist are touched.
    let existing = 0;
    while (existing < this.#keep && (await exists(`${this.#path}.${existing + 1}`))) existing++;
    if (existing === this.#keep) await rm(`${this.#path}.${this.#keep}`, { force: true });
    for (let k = Math.min(existing, this.#keep - 1); k >= 1; k--) await rename(`${this.#path}.${k}`, `${this.#path}.${k + 1}`);
    await rename(this.#path, `${this.#path}.1`);
    await syncDirectory(dirname(this.#path));
    await this.#open();
  }

  async #closeFile(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
  }
}

/** Length of the file up to and including its last newline (0 when it has none). */
async function completeLinesLength(file: FileHandle, size: number): Promise<number> {
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const buf = Buffer.alloc(end - start);
    await file.read(buf, 0, buf.length, start);
    const nl = buf.lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Makes the renames durable (POSIX: a rename is persisted by syncing the directory). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
