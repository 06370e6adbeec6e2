// Tree heads believed only under a checkpoint k of the policy's witnesses cosigned (issue 17;
// the SDK's ehrgate/_client/witnessed.py). With a policy, every tree head a read relies on
// (a record's proof, the admin's "Verify now") must be covered by a *witnessed* checkpoint:
// signed by the log's checkpoint key (pinned: given by /v1/ledger/head under the ledger key
// pinned at sign-in, then kept in this browser), cosigned by ≥ k of the policy's witnesses,
// at least as large as the head, and the head consistent with it (equal roots at one size,
// else an RFC 9162 consistency proof). Each checkpoint read is first compared with the
// largest witnessed one kept: another root at the same size, or no consistency proof
// between them, is a split view; so is a head that the covering checkpoint contradicts.
// A split view keeps both signed views (evidence in this browser, downloadable) and stops
// the read; too few cosignatures after the policy's wait stops it too (NoQuorum).
import { cosigners, MalformedNote, NoteError, NoteVerifier, ALG_ED25519, openCheckpoint, type Checkpoint, Verifiers } from "../../crypto/checkpoint.js";
import { CryptoError, equalBytes, fromBase64, fromHex, utf8, type TreeHead, verifyConsistency } from "../../crypto/index.js";
import { getBytes, getJson } from "../api.js";
import { session } from "../session.js";
import type { WitnessPolicy } from "./policy.js";
import { type Evidence, keepEvidence, loadPolicy, loadWitnessed, saveWitnessed } from "./store.js";

const POLL_MS = 200;

/** No checkpoint with the policy's quorum covers the head (after the policy's wait). */
export class NoQuorum extends CryptoError {
  constructor(message: string) {
    super(message);
    this.name = "NoQuorum";
  }
}

/** The log showed two views that cannot both be true; `evidence` holds both, kept here. */
export class SplitView extends CryptoError {
  constructor(message: string, readonly evidence: Evidence) {
    super(message);
    this.name = "SplitView";
  }
}

let splitViewShown: ((evidence: Evidence) => void) | null = null;

/** Called with the evidence of each split view found (the app shows it). */
export function whenSplitView(handler: (evidence: Evidence) => void): void {
  splitViewShown = handler;
}

/** Keep the evidence of a split view, show it, and return the error that stops the read. */
export function splitView(reason: string, ...views: Array<{ what: string; signed: unknown }>): SplitView {
  const kept = loadWitnessed();
  const all = [...views];
  if (kept !== null && !all.some((view) => view.signed === kept.note)) all.push({ what: "witnessed checkpoint seen before", signed: kept.note });
  const evidence: Evidence = { kind: "split-view", gateway: location.origin, found_at: new Date().toISOString(), reason, views: all };
  keepEvidence(evidence);
  splitViewShown?.(evidence);
  return new SplitView(`SPLIT VIEW: ${reason}. Both signed views are kept on this device as evidence (Witnesses → Download).`, evidence);
}

interface Held {
  readonly checkpoint: Checkpoint;
  readonly note: string;
}

/** The log's checkpoint key: the gateway's, under the ledger key pinned at sign-in, and the one kept here. */
async function logKey(): Promise<NoteVerifier> {
  const head = await getJson<{ ledger_public_key: string; checkpoint_key?: string; log_origin?: string }>("/v1/ledger/head");
  if (!equalBytes(fromBase64(head.ledger_public_key, "ledger key"), session().ledgerKey)) {
    throw new CryptoError("the gateway's ledger key is not the one pinned at sign-in");
  }
  if (typeof head.checkpoint_key !== "string") throw new CryptoError("the gateway names no checkpoint key: it cannot prove its tree heads were witnessed");
  const kept = loadWitnessed();
  if (kept !== null && kept.checkpoint_key !== head.checkpoint_key) {
    throw new CryptoError(`the gateway now signs its checkpoints with ${head.checkpoint_key}, but ${kept.checkpoint_key} is kept on this device: its log identity changed`);
  }
  try {
    return NoteVerifier.fromVkey(head.checkpoint_key, ALG_ED25519);
  } catch (error) {
    throw new CryptoError(`the gateway's checkpoint key is not a vkey: ${String(error)}`);
  }
}

function open(note: Uint8Array, log: NoteVerifier): Checkpoint {
  try {
    const { checkpoint } = openCheckpoint(note, new Verifiers([log]));
    if (checkpoint.origin !== log.name) throw new MalformedNote(`the checkpoint is of ${checkpoint.origin}, not of ${log.name}`);
    return checkpoint;
  } catch (error) {
    if (error instanceof NoteError) throw new CryptoError(`the gateway's checkpoint does not verify: ${error.message}`);
    throw error;
  }
}

function remembered(log: NoteVerifier): Held | null {
  const kept = loadWitnessed();
  if (kept === null || kept.checkpoint_key !== log.vkey()) return null;
  return { checkpoint: open(utf8(kept.note), log), note: kept.note };
}

async function consistent(oldSize: bigint, newSize: bigint, oldRoot: Uint8Array, newRoot: Uint8Array): Promise<string | null> {
  let proof: { proof: string[] };
  try {
    proof = await getJson<{ proof: string[] }>(`/v1/ledger/consistency?old_size=${oldSize}&new_size=${newSize}`);
  } catch (error) {
    throw new CryptoError(`the gateway cannot prove that its tree of ${newSize} entries extends its tree of ${oldSize} entries: its log was rolled back or forked, or it cannot serve the proof (${error instanceof Error ? error.message : String(error)})`);
  }
  try {
    verifyConsistency(Number(oldSize), Number(newSize), oldRoot, newRoot, proof.proof.map((p) => fromHex(p)));
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** A new checkpoint must agree with the largest witnessed one kept. */
async function checkAgainst(held: Held, checkpoint: Checkpoint, note: string): Promise<void> {
  const known = held.checkpoint;
  if (known.size === 0n || checkpoint.size === 0n) return;
  const views = [{ what: "checkpoint", signed: note }, { what: "witnessed checkpoint seen before", signed: held.note }];
  if (checkpoint.size === known.size) {
    if (!equalBytes(checkpoint.root, known.root)) throw splitView(`${known.origin} signed two checkpoints of ${known.size} entries with different roots: the log forked`, ...views);
    return;
  }
  const [older, newer] = checkpoint.size < known.size ? [checkpoint, known] : [known, checkpoint];
  const failure = await consistent(older.size, newer.size, older.root, newer.root);
  if (failure !== null) throw splitView(`${known.origin}'s checkpoint of ${newer.size} entries does not extend its checkpoint of ${older.size} entries: the log forked (${failure})`, ...views);
}

/**
 * The head must be part of the witnessed checkpoint's tree. If it is not, the gateway's
 * current checkpoint (signed by the log) goes into the evidence too: with the witnessed one
 * it is often two checkpoints of one size with different roots, which proves the fork alone.
 */
async function checkCovers(head: TreeHead, held: Held, log: NoteVerifier): Promise<void> {
  const { checkpoint } = held;
  const size = BigInt(head.tree_size);
  const root = fromHex(head.root);
  let failure: string | null = null;
  if (size === checkpoint.size) {
    if (!equalBytes(root, checkpoint.root)) failure = `the signed tree head and the witnessed checkpoint of ${size} entries have different roots: the log forked`;
  } else {
    const why = await consistent(size, checkpoint.size, root, checkpoint.root);
    if (why !== null) failure = `the tree of ${size} entries is not part of the witnessed checkpoint of ${checkpoint.size} entries: the log forked (${why})`;
  }
  if (failure === null) return;
  const views = [{ what: "signed tree head", signed: head as unknown }, { what: "witnessed checkpoint", signed: held.note as unknown }];
  try {
    const bytes = await getBytes("/v1/ledger/checkpoint");
    open(bytes, log);
    const note = new TextDecoder().decode(bytes);
    if (note !== held.note) views.push({ what: "the gateway's checkpoint now", signed: note });
  } catch {
    // the head and the witnessed checkpoint are the evidence already
  }
  throw splitView(failure, ...views);
}

function quorumOf(held: Held, policy: WitnessPolicy): string[] | null {
  try {
    const names = cosigners(utf8(held.note), policy.verifiers);
    return names.length >= policy.quorum ? names : null;
  } catch {
    return null;
  }
}

function describe(held: Held, policy: WitnessPolicy, names: string[]): string {
  return `covered by the checkpoint of ${held.checkpoint.size} entries cosigned by ${names.length} of ${policy.witnesses.length} trusted witnesses (${names.join(", ")}; ${policy.quorum} needed)`;
}

const covered = new Set<string>();

/**
 * With a witness policy: `head` (already verified against the pinned ledger key) must be
 * covered by a witnessed checkpoint; waits up to the policy's wait for the witnesses to
 * catch up. Returns what was checked, or null when there is no policy.
 */
export async function requireWitnessed(head: TreeHead): Promise<string | null> {
  const policy = loadPolicy();
  if (policy === null) return null;
  const log = await logKey();
  // the largest witnessed checkpoint kept: every checkpoint read must agree with it; it
  // covers the head only if it has the quorum of the policy in force now
  let held = remembered(log);
  const heldQuorum = held === null ? null : quorumOf(held, policy);
  if (held !== null && heldQuorum !== null && held.checkpoint.size >= BigInt(head.tree_size)) {
    const key = `${held.note}\n${head.tree_size}\n${head.root}`;
    if (!covered.has(key)) await checkCovers(head, held, log);
    covered.add(key);
    return describe(held, policy, heldQuorum);
  }
  const deadline = performance.now() + policy.waitSeconds * 1000;
  for (;;) {
    const bytes = await getBytes(`/v1/ledger/checkpoint?cosignatures=${policy.quorum}`);
    const checkpoint = open(bytes, log);
    const note = new TextDecoder().decode(bytes);
    if (held !== null) await checkAgainst(held, checkpoint, note);
    let names: string[];
    try {
      names = cosigners(bytes, policy.verifiers);
    } catch (error) {
      throw new CryptoError(`a trusted witness's cosignature on the gateway's checkpoint does not verify: ${String(error)}`);
    }
    if (names.length >= policy.quorum) {
      if (held === null || checkpoint.size > held.checkpoint.size || quorumOf(held, policy) === null) {
        held = { checkpoint, note };
        saveWitnessed({ checkpoint_key: log.vkey(), note });
      }
      if (checkpoint.size >= BigInt(head.tree_size)) {
        await checkCovers(head, { checkpoint, note }, log);
        return describe({ checkpoint, note }, policy, names);
      }
    }
    if (performance.now() >= deadline) {
      if (names.length < policy.quorum) {
        throw new NoQuorum(`the checkpoint of ${checkpoint.origin} at ${checkpoint.size} entries is cosigned by ${names.length} of the trusted witnesses (${names.join(", ") || "none of them"}); the policy needs ${policy.quorum} of ${policy.witnesses.length}`);
      }
      throw new NoQuorum(`no checkpoint cosigned by ${policy.quorum} of the trusted witnesses covers the tree of ${head.tree_size} entries after ${policy.waitSeconds} s (the largest covers ${checkpoint.size}): the witnesses are behind or do not hear from the gateway`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

