/**
 * Checks audit records read back (from files, a collected stdout or the Redis stream) against
 * their hash chains and the checkpoints in the store, and says what is wrong and where.
 *
 * Records of several chains may interleave; each chain is checked on its own, in read order:
 * - a record whose hash does not match its content was **edited**;
 * - a record whose bytes are not exactly its canonical serialisation (record.ts) was edited
 *   without changing its value as one parser reads it (**non-canonical**): a duplicate key that
 *   another parser would read instead, whitespace, escapes; so is a line that is not UTF-8;
 * - a record that does not link to its predecessor (`prev` ≠ the previous record's hash) was
 *   altered with its hash recomputed, or replaced (**broken-link**);
 * - a seq missing from a chain: records **deleted** (in the middle, or at the start);
 * - a seq that turns up after a later one: records **reordered**;
 * - a second record with a seq already seen: **inserted** (or an exact **duplicate**);
 * - a chain ending before its checkpoint: records deleted at the end (**truncated**); a
 *   record at the checkpoint's seq with another hash: **checkpoint-mismatch** (the chain was
 *   rewritten up to there); records after a closed chain's last checkpoint: **inserted**;
 * - a chain with no checkpoint in the store: **unregistered** (forged under a new chain id);
 *   a checkpoint whose chain has no records at all: **chain-missing**;
 * - the file sink's retention (`audit.pruned.<chain>` in the store): a chain starting right after
 *   what it removed, linked to it, is a note; a record missing beyond it is still **deleted**.
 *
 * Memory stays small: per chain, the head and what surrounds each anomaly, never every record.
 */
import type { Checkpoint, Pruned } from './checkpoints.js';
import { auditRecordSchema, chainFieldsSchema, genesisHash, recordHash, serializeRecord } from './record.js';

export type ProblemKind =
  | 'unreadable'
  | 'malformed'
  | 'non-canonical'
  | 'edited'
  | 'broken-link'
  | 'deleted'
  | 'inserted'
  | 'duplicate'
  | 'reordered'
  | 'truncated'
  | 'checkpoint-mismatch'
  | 'checkpoint-missing'
  | 'unregistered'
  | 'chain-missing';

export interface Problem {
  kind: ProblemKind;
  /** `file:line`, `<stream key>#<entry id>`, or `store:<setting name>` */
  location: string;
  chain?: string;
  seq?: number;
  message: string;
}

export interface SourceLine {
  /** the line without its newline; undefined when its bytes are not UTF-8 */
  text: string | undefined;
  location: string;
}

export interface VerifyOptions {
  /** lines that are not audit records (no `"audit"` member) are skipped: a collected stdout mixing log lines */
  mixed?: boolean;
  /**
   * the oldest entries were removed by retention (a Redis stream trimmed by its length cap):
   * chains whose first records are gone, or that are gone entirely, are notes, not problems
   */
  trimmed?: boolean;
  /**
   * where the records read were written (AuditSink.where): only checkpoints of chains written
   * there are expected among them (others went to another sink, or another host's files)
   */
  where?: string;
  /** the checkpoint of a chain the map does not have (created while verify was reading) */
  lateCheckpoint?: (chain: string) => Promise<Checkpoint | undefined>;
  /**
   * what the file sink's retention removed of each chain (src/audit/retention.ts): the chain may
   * start right after it, and its next record must name it; missing records beyond it are deleted
   */
  pruned?: ReadonlyMap<string, Pruned>;
}

export interface VerifyResult {
  /** records placed in a chain */
  records: number;
  chains: number;
  /** lines skipped as not audit records (mixed input only) */
  skipped: number;
  problems: Problem[];
  /** facts worth knowing that are not tampering (write failures the writer recorded, retention) */
  notes: string[];
}

interface Seen {
  hash: string;
  loc: string;
}

interface Gap {
  from: number;
  to: number;
  /** the record before the gap, if any */
  after?: string;
  /** the record after it */
  before: string;
}

interface Run {
  first: number;
  last: number;
  firstLoc: string;
  lastLoc: string;
  afterSeq: number;
  afterLoc: string;
}

interface ChainState {
  chain: string;
  count: number;
  firstLoc: string;
  maxSeq: number;
  /** the record(s) at maxSeq: more than one when a seq is duplicated at the head */
  heads: Seen[];
  gaps: Gap[];
  /** hashes of records next to anomalies (before a gap, out-of-order arrivals) */
  known: Map<number, Seen[]>;
  /** a record whose predecessor (the key) has not been seen yet */
  awaiting: Map<number, { prev: string; loc: string }>;
  run: Run | undefined;
  /** whether the checkpoint came from the map read before the records (a late one may be ahead of them) */
  checkpointEarly: boolean;
  checkpoint: Checkpoint | undefined;
  /** record(s) at the checkpoint's seq */
  atCheckpoint: Seen[];
  /** the first record beyond a closed checkpoint */
  afterClose: Seen & { seq: number } | undefined;
}

export async function verifyRecords(
  lines: AsyncIterable<SourceLine>,
  checkpoints: ReadonlyMap<string, Checkpoint | undefined>,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const chains = new Map<string, ChainState>();
  let records = 0;
  let skipped = 0;
  const problem = (kind: ProblemKind, location: string, message: string, chain?: string, seq?: number) =>
    problems.push({ kind, location, message, ...(chain !== undefined ? { chain } : {}), ...(seq !== undefined ? { seq } : {}) });

  function place(st: ChainState, s: number, h: string, p: string, loc: string) {
    st.count++;
    const cp = st.checkpoint;
    if (cp && cp.seq === s) st.atCheckpoint.push({ hash: h, loc });
    if (cp?.closed && s > cp.seq && !st.afterClose) st.afterClose = { seq: s, hash: h, loc };

    if (st.maxSeq === 0) {
      if (s > 1) {
        st.gaps.push({ from: 1, to: s - 1, before: loc });
        st.awaiting.set(s - 1, { prev: p, loc });
      } else checkGenesis(st, p, loc);
      st.maxSeq = s;
      st.heads = [{ hash: h, loc }];
      return;
    }
    if (s === st.maxSeq + 1) {
      endRun(st);
      resolveHeads(st, p, loc);
      st.maxSeq = s;
      st.heads = [{ hash: h, loc }];
      return;
    }
    if (s > st.maxSeq + 1) {
      endRun(st);
      unresolvedHeads(st);
      st.known.set(st.maxSeq, st.heads);
      st.gaps.push({ from: st.maxSeq + 1, to: s - 1, after: st.heads[0]!.loc, before: loc });
      st.awaiting.set(s - 1, { prev: p, loc });
      st.maxSeq = s;
      st.heads = [{ hash: h, loc }];
      return;
    }
    if (s === st.maxSeq) {
      endRun(st);
      st.heads.push({ hash: h, loc });
      return;
    }
    // s < maxSeq: a missing record turning up late, or a second one
    const gapIndex = st.gaps.findIndex((g) => g.from <= s && s <= g.to);
    if (gapIndex === -1) {
      endRun(st);
      const earlier = st.known.get(s);
      const copy = earlier?.some((e) => e.hash === h);
      problem(
        copy ? 'duplicate' : 'inserted',
        loc,
        `a second seq ${s} of chain ${st.chain}${earlier ? ` (the first at ${earlier[0]!.loc})` : ''}: ${copy ? 'an exact copy' : 'an inserted record'}`,
        st.chain,
        s,
      );
      return;
    }
    const gap = st.gaps[gapIndex]!;
    const parts: Gap[] = [];
    if (gap.from < s) parts.push({ ...gap, to: s - 1, before: loc });
    if (s < gap.to) parts.push({ ...gap, from: s + 1, after: loc });
    st.gaps.splice(gapIndex, 1, ...parts);

    // every other kind of record ends a run: an open run is this chain's previous record
    if (st.run && st.run.last === s - 1) {
      st.run.last = s;
      st.run.lastLoc = loc;
    } else {
      endRun(st);
      st.run = { first: s, last: s, firstLoc: loc, lastLoc: loc, afterSeq: st.maxSeq, afterLoc: st.heads[0]!.loc };
    }

    if (s === 1) checkGenesis(st, p, loc);
    else {
      const before = st.known.get(s - 1);
      if (before) {
        if (!before.some((b) => b.hash === p)) brokenLink(st, s, loc, before);
      } else st.awaiting.set(s - 1, { prev: p, loc });
    }
    const next = st.awaiting.get(s);
    if (next) {
      st.awaiting.delete(s);
      if (next.prev !== h) brokenLink(st, s + 1, next.loc, [{ hash: h, loc }]);
    }
    st.known.set(s, [{ hash: h, loc }]);
  }

  function checkGenesis(st: ChainState, p: string, loc: string) {
    if (p !== genesisHash(st.chain)) {
      problem('broken-link', loc, `seq 1 of chain ${st.chain} does not start from the chain's genesis: altered with its hash recomputed, or forged`, st.chain, 1);
    }
  }

  function brokenLink(st: ChainState, s: number, loc: string, before: Seen[]) {
    problem(
      'broken-link',
      loc,
      `seq ${s} of chain ${st.chain} does not follow seq ${s - 1} (at ${before.map((b) => b.loc).join(', ')}): one of them was altered with its hash recomputed, or replaced`,
      st.chain,
      s,
    );
  }

  /** The next record names its predecessor: among duplicated heads, the others were inserted. */
  function resolveHeads(st: ChainState, p: string, loc: string) {
    const matching = st.heads.filter((x) => x.hash === p);
    if (matching.length === 0) {
      brokenLink(st, st.maxSeq + 1, loc, st.heads);
      if (st.heads.length > 1) unresolvedHeads(st);
      return;
    }
    for (const head of st.heads) {
      if (head === matching[0]) continue;
      if (head.hash === p) problem('duplicate', head.loc, `a second seq ${st.maxSeq} of chain ${st.chain} (the first at ${matching[0]!.loc}): an exact copy`, st.chain, st.maxSeq);
      else problem('inserted', head.loc, `a second seq ${st.maxSeq} of chain ${st.chain} that the chain does not continue from (seq ${st.maxSeq + 1} at ${loc} follows ${matching[0]!.loc}): an inserted record`, st.chain, st.maxSeq);
    }
  }

  /** Duplicated heads nothing tells apart (yet). */
  function unresolvedHeads(st: ChainState) {
    const [first, ...others] = st.heads;
    for (const head of others) {
      const copy = head.hash === first!.hash;
      problem(copy ? 'duplicate' : 'inserted', head.loc, `a second seq ${st.maxSeq} of chain ${st.chain} (the first at ${first!.loc})${copy ? ': an exact copy' : '; one of the two was inserted'}`, st.chain, st.maxSeq);
    }
  }

  function endRun(st: ChainState) {
    const run = st.run;
    if (!run) return;
    st.run = undefined;
    const range = run.first === run.last ? `seq ${run.first}` : `seq ${run.first}–${run.last}`;
    const where = run.first === run.last ? '' : ` (at ${run.firstLoc} to ${run.lastLoc})`;
    problem('reordered', run.firstLoc, `${range} of chain ${st.chain}${where} come${run.first === run.last ? 's' : ''} after seq ${run.afterSeq} (at ${run.afterLoc}): records were reordered`, st.chain, run.first);
  }

  for await (const { text, location } of lines) {
    if (text === undefined) {
      problem('unreadable', location, 'not UTF-8 text (edited, or a partial write)');
      continue;
    }
    if (!text.trim()) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const isObject = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
    const marked = isObject && 'audit' in (parsed as object);
    if (options.mixed && !marked) {
      skipped++;
      continue;
    }
    if (!isObject) {
      problem('unreadable', location, 'not a JSON audit record (edited, or a partial write)');
      continue;
    }
    const object = parsed as Record<string, unknown>;
    const fields = chainFieldsSchema.safeParse(object);
    if (!fields.success) {
      problem('malformed', location, 'cannot be placed in a chain: missing or invalid chain, seq, prev or hash');
      continue;
    }
    const { chain, seq, prev, hash } = fields.data;
    records++;
    let st = chains.get(chain);
    if (!st) {
      st = {
        chain,
        count: 0,
        firstLoc: location,
        maxSeq: 0,
        heads: [],
        gaps: [],
        known: new Map(),
        awaiting: new Map(),
        run: undefined,
        checkpointEarly: checkpoints.has(chain),
        checkpoint: checkpoints.get(chain),
        atCheckpoint: [],
        afterClose: undefined,
      };
      chains.set(chain, st);
    }
    if (recordHash(object) !== hash) {
      problem('edited', location, `seq ${seq} of chain ${chain} was altered: its hash does not match its content`, chain, seq);
    } else if (serializeRecord(object) !== text) {
      // same value, other bytes: a duplicate key (readers may keep either), whitespace, escapes
      problem(
        'non-canonical',
        location,
        `seq ${seq} of chain ${chain} was altered: its bytes are not the record's one serialisation (a duplicate key, whitespace or an escape was added)`,
        chain,
        seq,
      );
    } else {
      const full = auditRecordSchema.safeParse(object);
      if (!full.success) {
        const issue = full.error.issues[0]!;
        problem('malformed', location, `seq ${seq} of chain ${chain} is not a valid record (${issue.path.join('.') || 'record'}: ${issue.message}) yet carries a matching hash: forged`, chain, seq);
      } else if (full.data.lost) {
        notes.push(`chain ${chain}: ${full.data.lost} record(s) could not be written before seq ${seq} (${location}); the writer logged why`);
      }
    }
    place(st, seq, hash, prev, location);
  }

  for (const st of chains.values()) {
    endRun(st);
    // duplicated heads at the very end: the checkpoint, if it is there, tells them apart
    if (st.heads.length > 1) {
      const cp = st.checkpoint;
      const genuine = cp && cp.seq === st.maxSeq ? st.heads.find((h) => h.hash === cp.hash) : undefined;
      if (genuine) {
        for (const head of st.heads) {
          if (head === genuine) continue;
          problem(head.hash === genuine.hash ? 'duplicate' : 'inserted', head.loc, `a second seq ${st.maxSeq} of chain ${st.chain} (the checkpointed one is at ${genuine.loc})${head.hash === genuine.hash ? ': an exact copy' : ': an inserted record'}`, st.chain, st.maxSeq);
        }
      } else unresolvedHeads(st);
    }
    for (const gap of st.gaps) {
      const range = gap.from === gap.to ? `seq ${gap.from}` : `seq ${gap.from}–${gap.to}`;
      const pruned = options.pruned?.get(st.chain);
      if (gap.from === 1 && pruned) {
        // retention removed seq 1 to pruned.seq: the chain may start after that, nowhere else
        notes.push(`chain ${st.chain}: seq 1–${Math.min(pruned.seq, gap.to)} removed by the retention (${pruned.time})`);
        if (gap.to > pruned.seq) {
          problem('deleted', gap.before, `records deleted from chain ${st.chain}: seq ${pruned.seq + 1}${gap.to > pruned.seq + 1 ? `–${gap.to}` : ''} missing after what the retention removed, before ${gap.before}`, st.chain, pruned.seq + 1);
        } else if (gap.to === pruned.seq) {
          const next = st.awaiting.get(pruned.seq);
          if (next && next.prev !== pruned.hash) {
            problem('broken-link', next.loc, `seq ${pruned.seq + 1} of chain ${st.chain} does not follow the record the retention removed: altered with its hash recomputed, or forged`, st.chain, pruned.seq + 1);
          }
        }
      } else if (gap.from === 1) {
        if (options.trimmed) notes.push(`chain ${st.chain} starts at seq ${gap.to + 1} (${gap.before}): its older records were removed by retention`);
        else problem('deleted', gap.before, `records deleted at the start of chain ${st.chain}: ${range} missing before ${gap.before}`, st.chain, gap.from);
      } else {
        problem('deleted', gap.before, `records deleted from chain ${st.chain}: ${range} missing between ${gap.after} and ${gap.before}`, st.chain, gap.from);
      }
    }
    await checkpointOf(st);
  }

  async function checkpointOf(st: ChainState) {
    if (!st.checkpointEarly) {
      const late = await options.lateCheckpoint?.(st.chain);
      if (!late) {
        problem('unregistered', st.firstLoc, `chain ${st.chain} (${st.count} record(s)) has no checkpoint in the store: records forged under a new chain id, or a writer that never reached the store`, st.chain);
        return;
      }
      // read after the records: it may be ahead of what was read, so only what was read is compared
      if (late.seq <= st.maxSeq) {
        st.checkpoint = late;
        const at = st.known.get(late.seq) ?? (late.seq === st.maxSeq ? st.heads : []);
        if (at.length && !at.some((a) => a.hash === late.hash)) mismatch(st, late, at[0]!.loc);
      }
      return;
    }
    const cp = st.checkpoint;
    if (!cp) {
      problem('checkpoint-missing', `store:audit.checkpoint.${st.chain}`, `chain ${st.chain} is in the store's chain index but its checkpoint is missing or unreadable`, st.chain);
      return;
    }
    if (cp.seq > st.maxSeq) {
      problem('truncated', st.heads[0]!.loc, `records deleted at the end of chain ${st.chain}: its checkpoint is at seq ${cp.seq}, the last record seen is seq ${st.maxSeq} (at ${st.heads[0]!.loc})`, st.chain, st.maxSeq + 1);
      return;
    }
    if (st.atCheckpoint.length) {
      if (!st.atCheckpoint.some((a) => a.hash === cp.hash)) mismatch(st, cp, st.atCheckpoint[0]!.loc);
    } else {
      // the checkpointed record itself is gone (reported as deleted); its successor still names it
      const next = st.awaiting.get(cp.seq);
      if (next && next.prev !== cp.hash) mismatch(st, cp, next.loc);
    }
    if (cp.closed && st.afterClose) {
      problem('inserted', st.afterClose.loc, `records after the end of chain ${st.chain}: it was closed at seq ${cp.seq}, yet seq ${st.afterClose.seq} is here${st.maxSeq > st.afterClose.seq ? ` (up to seq ${st.maxSeq})` : ''}`, st.chain, st.afterClose.seq);
    }
  }

  function mismatch(st: ChainState, cp: Checkpoint, loc: string) {
    problem('checkpoint-mismatch', loc, `seq ${cp.seq} of chain ${st.chain} differs from its checkpoint (${cp.time}): the chain was rewritten up to there`, st.chain, cp.seq);
  }

  for (const [chain, cp] of checkpoints) {
    if (chains.has(chain)) continue;
    if (cp && options.where !== undefined && cp.where !== undefined && cp.where !== options.where) continue;
    const where = `store:audit.checkpoint.${chain}`;
    const pruned = options.pruned?.get(chain);
    if (!cp) problem('checkpoint-missing', where, `chain ${chain} is in the store's chain index but its checkpoint is missing or unreadable`, chain);
    else if (pruned && pruned.seq >= cp.seq) notes.push(`chain ${chain} (checkpoint at seq ${cp.seq}, ${cp.time}): wholly removed by the retention (${pruned.time})`);
    else if (pruned) problem('deleted', where, `chain ${chain} has no records, yet only seq 1–${pruned.seq} were removed by the retention and its checkpoint says seq ${cp.seq}: seq ${pruned.seq + 1}–${cp.seq} deleted`, chain, pruned.seq + 1);
    else if (options.trimmed) notes.push(`chain ${chain} (checkpoint at seq ${cp.seq}, ${cp.time}) has no records left: removed by retention`);
    else problem('chain-missing', where, `chain ${chain} has no records, yet its checkpoint says seq ${cp.seq} (${cp.time}): the whole chain was deleted`, chain);
  }

  return { records, chains: chains.size, skipped, problems, notes };
}
