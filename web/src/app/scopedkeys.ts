// Scoped record keys in the app (ehrgate/_client/keys.py): the patient publishes the public
// keys of every category for this month and the next 24, signed here; an uploader believes
// a published key only when the patient's own signed publish_keys entry carries it (checked
// with the patient's signing key of that entry's time) and a receipt under the pinned ledger key proves
// that entry is on the log.
import {
  type Receipt, canonical, leafHash, nextPeriod, publishedKeyFrom, scopedPrivateKey, toBase64, toHex,
  verifyReceipt,
} from "../crypto/index.js";
import { getJson, postJson } from "./api.js";
import { signingKeyAt } from "./identitykeys.js";
import { RefusedOpen } from "./records.js";
import { type SignedTransaction, advancePin, session, signTransaction } from "./session.js";

export const MONTHS_AHEAD = 24;
const KEYS_PER_TX = 128;

export function currentPeriod(): string {
  return new Date().toISOString().slice(0, 7);
}

export async function ledgerCategories(): Promise<string[]> {
  return (await getJson<{ categories: string[] }>("/v1/categories")).categories;
}

export interface CategoryKeys {
  readonly category: string;
  /** the months published from this month on, in order */
  readonly ahead: string[];
  /** months from this one to the window's end (this month and the next `MONTHS_AHEAD`) not published */
  readonly missing: string[];
}

/** Which months' keys the patient has published, per category of the ledger. */
export async function publishedStatus(pseudonym: string): Promise<CategoryKeys[]> {
  const [listed, categories] = await Promise.all([
    getJson<{ keys: { category: string; period: string }[] }>(`/v1/patients/${pseudonym}/keys`),
    ledgerCategories(),
  ]);
  const now = currentPeriod();
  const window = Array.from({ length: MONTHS_AHEAD + 1 }, (_, n) => nextPeriod(now, n));
  return categories.map((category) => {
    const held = new Set(listed.keys.filter((k) => k.category === category).map((k) => k.period));
    return {
      category,
      ahead: [...held].filter((period) => period >= now).sort(),
      missing: window.filter((period) => !held.has(period)),
    };
  });
}

/** Publish the keys of every category for this month and the next `ahead` not yet published. */
export async function publishKeys(ahead = MONTHS_AHEAD): Promise<number> {
  const { keys, ledgerKey } = session();
  const pseudonym = keys.pseudonym!;
  const periods = Array.from({ length: ahead + 1 }, (_, n) => nextPeriod(currentPeriod(), n));
  const listed = await getJson<{ keys: { category: string; period: string }[] }>(`/v1/patients/${pseudonym}/keys`);
  const done = new Set(listed.keys.map((k) => `${k.category}/${k.period}`));
  const wanted = (await ledgerCategories()).flatMap((category) => periods
    .filter((period) => !done.has(`${category}/${period}`))
    .map((period) => ({ category, period })));
  wanted.sort((a, b) => (a.category < b.category ? -1 : a.category > b.category ? 1 : a.period < b.period ? -1 : 1));
  for (let at = 0; at < wanted.length; at += KEYS_PER_TX) {
    const entries = wanted.slice(at, at + KEYS_PER_TX).map(({ category, period }) => ({
      category, period, public_key: toBase64(scopedPrivateKey(keys.patientKey!, category, period).publicKey),
    }));
    const tx = signTransaction("publish_keys", { pseudonym, keys: entries });
    const answer = await postJson<{ receipt: Receipt }>(`/v1/patients/${pseudonym}/keys`, tx);
    checkReceipt(answer.receipt, tx, ledgerKey);
  }
  return wanted.length;
}

function checkReceipt(receipt: Receipt, tx: SignedTransaction, ledgerKey: Uint8Array): void {
  verifyReceipt(receipt, ledgerKey);
  if (toHex(leafHash(canonical(tx))) !== receipt.tx_hash) throw new RefusedOpen("the ledger's receipt is for another transaction");
}

interface PublishedKeyProof {
  key: { category: string; period: string; public_key_sha256: string };
  entry: { index: number; tx: SignedTransaction };
  receipt: Receipt;
}

/** The patient's published key for (category, period), checked as above before it is used. */
export async function publishedKey(pseudonym: string, category: string, period: string): Promise<Uint8Array> {
  // none published: the gateway's 404 says what the patient must do, shown as it is
  const answer = await getJson<PublishedKeyProof>(`/v1/patients/${pseudonym}/keys/${category}/${period}`);
  const patient = await getJson<{ identity_id: string }>(`/v1/patients/${pseudonym}`);
  // signed with the patient's key of that entry's time (it may have rotated its keys since)
  const signerKey = await signingKeyAt(patient.identity_id, answer.entry.index);
  const tx = answer.entry.tx;
  const raw = publishedKeyFrom(tx, {
    pseudonym, category, period, patientId: patient.identity_id,
    patientVerifyKey: signerKey, publicKeySha256: answer.key.public_key_sha256,
  });
  checkReceipt(answer.receipt, tx, session().ledgerKey);
  await advancePin(answer.receipt.tree_head);
  return raw;
}
