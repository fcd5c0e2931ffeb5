/**
 * Where tool call reports wait while the authorization server cannot take them: a file of
 * JSON lines (one record a line) under a directory of this MCP server's, so they survive a
 * restart and a new process with the same directory sends them first. Node-only parts are
 * loaded with a dynamic `import('node:fs/promises')`: on a runtime without a file system
 * {@link openSpool} answers undefined and the reporter keeps a bounded queue in memory.
 *
 * One process at a time per directory: two processes sharing one would send each other's
 * records (the authorization server drops the duplicates by id, so nothing is recorded twice).
 */
import { sha256Hex } from './util.js';

/** The spool file's name inside the spool directory. */
export const SPOOL_FILE = 'tool-calls.jsonl';

interface NodeFs {
  mkdir(path: string, options: { recursive: true; mode?: number }): Promise<unknown>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  appendFile(path: string, data: string, options: { mode?: number }): Promise<void>;
  writeFile(path: string, data: string, options: { mode?: number }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
}

const isNode = () => typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === 'string';

/** `${os.tmpdir()}/mcp-authz-spool/<first 16 hex of sha256(resource)>`, or undefined without node:os. */
export async function defaultSpoolDir(resource: string): Promise<string | undefined> {
  if (!isNode()) return undefined;
  try {
    const os = (await import('node:os')) as { tmpdir(): string };
    return `${os.tmpdir()}/mcp-authz-spool/${(await sha256Hex(resource)).slice(0, 16)}`;
  } catch {
    return undefined;
  }
}

/** The spool file of one directory. Records are opaque objects with a string `id`. */
export class ReportSpool<T extends { id: string }> {
  readonly path: string;

  constructor(
    private readonly fs: NodeFs,
    readonly dir: string,
  ) {
    this.path = `${dir.replace(/\/+$/, '')}/${SPOOL_FILE}`;
  }

  /** Every record in the file, oldest first (unreadable lines are counted, not returned). */
  async load(): Promise<{ records: T[]; unreadable: number }> {
    let text: string;
    try {
      text = await this.fs.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return { records: [], unreadable: 0 };
      throw err;
    }
    const records: T[] = [];
    const seen = new Set<string>();
    let unreadable = 0;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const record = JSON.parse(line) as T;
        if (typeof record !== 'object' || record === null || typeof record.id !== 'string') throw new Error('no id');
        if (!seen.has(record.id)) (seen.add(record.id), records.push(record));
      } catch {
        unreadable++;
      }
    }
    return { records, unreadable };
  }

  /** Adds records at the end of the file. */
  async append(records: readonly T[]): Promise<void> {
    if (!records.length) return;
    await this.fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.fs.appendFile(this.path, records.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
  }

  /** Replaces the file's content with `records` (removes it when there are none), atomically. */
  async replace(records: readonly T[]): Promise<void> {
    if (!records.length) return this.fs.rm(this.path, { force: true });
    const temporary = `${this.path}.${Date.now().toString(36)}.tmp`;
    await this.fs.writeFile(temporary, records.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
    await this.fs.rename(temporary, this.path);
  }
}

/** The spool in `dir`, or undefined where there is no file system (a non-Node runtime). */
export async function openSpool<T extends { id: string }>(dir: string | undefined): Promise<ReportSpool<T> | undefined> {
  if (!dir || !isNode()) return undefined;
  try {
    const fs = (await import('node:fs/promises')) as unknown as NodeFs;
    return new ReportSpool<T>(fs, dir);
  } catch {
    return undefined;
  }
}
