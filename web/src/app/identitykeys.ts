// The key an identity signed with at a given ledger entry. An identity's keys can be rotated
// (a `rotate_keys` entry); what it signed before is checked with the key of that time, from
// the key history the gateway keeps: every key with the entries [valid_from, valid_until) it signed.
import { fromBase64 } from "../crypto/index.js";
import { getJson } from "./api.js";

interface IdentityKeyOut {
  signing_public_key: string;
  valid_from: number;
  valid_until: number | null;
}

export async function signingKeyAt(identityId: string, index: number): Promise<Uint8Array> {
  const history = await getJson<{ id: string; keys: IdentityKeyOut[] }>(`/v1/identities/${encodeURIComponent(identityId)}/keys`);
  const key = history.keys.find((k) => k.valid_from <= index && (k.valid_until === null || index < k.valid_until));
  if (history.id !== identityId || key === undefined) throw new Error(`the gateway names no key of ${identityId} at ledger entry ${index}`);
  return fromBase64(key.signing_public_key, "signing key");
}
