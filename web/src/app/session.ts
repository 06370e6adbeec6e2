// Who is signed in: the keys (in memory only), the bearer token, the pinned ledger key and
// tree head; signing of the challenge and of ledger transactions happens here, on the device.
import {
  CryptoError, type IdentityKeys, type TreeHead, canonical, fromBase64, fromHex, signJson, toBase64, toHex,
  verifyConsistency, verifyTreeHead,
} from "../crypto/index.js";
import { getJson, postJson, setToken } from "./api.js";
import { splitView } from "./witness/witnessed.js";

export interface Session {
  readonly keys: IdentityKeys;
  readonly role: string;
  readonly expiresAt: string;
  readonly ledgerKey: Uint8Array;
  pinnedHead: TreeHead | null;
}

let current: Session | null = null;

export function session(): Session {
  if (current === null) throw new Error("not signed in");
  return current;
}

export function signedIn(): Session | null {
  return current;
}

export function signOut(): void {
  current = null;
  setToken(null);
}

interface LedgerHead {
  tree_head: TreeHead | null;
  ledger_public_key: string;
}

/** The ledger key and head, pinned at sign-in: every later proof is checked against them. */
async function pinLedger(): Promise<{ ledgerKey: Uint8Array; head: TreeHead | null }> {
  const answer = await getJson<LedgerHead>("/v1/ledger/head");
  const ledgerKey = fromBase64(answer.ledger_public_key, "ledger key");
  if (answer.tree_head !== null) verifyTreeHead(answer.tree_head, ledgerKey);
  return { ledgerKey, head: answer.tree_head };
}

export async function signIn(keys: IdentityKeys): Promise<Session> {
  const challenge = await postJson<{ challenge: string; audience: string }>("/v1/auth/challenge", { identity_id: keys.id });
  const statement = { purpose: "ehrgate/auth/v1", challenge: challenge.challenge, identity_id: keys.id, audience: challenge.audience };
  const granted = await postJson<{ access_token: string; role: string; expires_at: string }>("/v1/auth/token", {
    identity_id: keys.id, challenge: challenge.challenge, signature: signJson(keys.signingKey, statement),
  });
  setToken(granted.access_token);
  const { ledgerKey, head } = await pinLedger();
  current = { keys, role: granted.role, expiresAt: granted.expires_at, ledgerKey, pinnedHead: head };
  return current;
}

/** The ledger's time form: RFC 3339 UTC with microseconds. */
export function ledgerTime(when: Date): string {
  return when.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function newId(): string {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

export interface SignedTransaction {
  type: string;
  body: Record<string, unknown>;
  signer: string;
  signature: string;
}

/** A ledger transaction signed by the signed-in identity (ledger/wire/builders.py `sign`). */
export function signTransaction(type: string, fields: Record<string, unknown>): SignedTransaction {
  const { keys } = session();
  const body = { ...fields, tx_id: newId(), issued_at: ledgerTime(new Date()) };
  const payload = { type, body, signer: keys.id };
  return { ...payload, signature: signJson(keys.signingKey, payload) };
}

export { newId, canonical, toBase64 };

/**
 * Move the pinned tree head forward to `head`, but only after its signature verifies and an
 * RFC 9162 consistency proof shows the pinned tree is a prefix of it: a gateway that forked
 * or rewrote its ledger since sign-in is caught here. Returns what was checked.
 */
/** A consistency proof the gateway sent along with an answer (an open's), between two trees. */
export interface OfferedConsistency {
  old_size: number;
  new_size: number;
  proof: string[];
}

export async function advancePin(head: TreeHead, offered: OfferedConsistency | null = null): Promise<string> {
  const s = session();
  verifyTreeHead(head, s.ledgerKey);
  const pinned = s.pinnedHead;
  if (pinned === null) {
    s.pinnedHead = head;
    return `pinned the ledger at ${head.tree_size} entries`;
  }
  if (head.tree_size < pinned.tree_size) {
    throw new CryptoError(`the gateway shows ${head.tree_size} entries, fewer than the ${pinned.tree_size} pinned`);
  }
  if (head.tree_size > pinned.tree_size) {
    // the proof an open carried saves a request when it is between these two trees; it is
    // checked exactly like one asked for
    const proof = offered !== null && offered.old_size === pinned.tree_size && offered.new_size === head.tree_size
      ? offered
      : await getJson<{ proof: string[] }>(`/v1/ledger/consistency?old_size=${pinned.tree_size}&new_size=${head.tree_size}`);
    try {
      verifyConsistency(pinned.tree_size, head.tree_size, fromHex(pinned.root), fromHex(head.root), proof.proof.map((p) => fromHex(p)));
    } catch (error) {
      // both heads are signed by the ledger key: kept as the evidence of a split view
      throw splitView(`${error instanceof Error ? error.message : String(error)}`, { what: "signed tree head", signed: head }, { what: "signed tree head pinned before", signed: pinned });
    }
  } else if (head.root !== pinned.root) {
    throw splitView(`two different ledgers of ${head.tree_size} entries`, { what: "signed tree head", signed: head }, { what: "signed tree head pinned before", signed: pinned });
  }
  const from = pinned.tree_size;
  s.pinnedHead = head;
  return `consistent with the pinned ledger: ${from} → ${head.tree_size} entries`;
}
