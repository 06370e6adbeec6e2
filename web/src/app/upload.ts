// A clinician's upload, sealed on the device (the gateway only ever sees the sealed body and
// the capsule): seal to the patient's published key of (category, month of created_at),
// checked first (app/scopedkeys.ts), sign as the uploader, store the
// body (POST /v1/blobs, refused before anything is stored without a write right), then
// commit the signed `record` with the capsule (POST /v1/records) and check its receipt.
import { recordPeriod, seal, toBase64, verifyReceipt, type Receipt } from "../crypto/index.js";
import { postBytes, postJson } from "./api.js";
import { publishedKey } from "./scopedkeys.js";
import { RefusedOpen } from "./records.js";
import { ledgerTime, newId, session, signTransaction } from "./session.js";

export interface Uploaded {
  recordId: string;
  entryIndex: number;
}

export async function uploadSealed(file: File, pseudonym: string, category: string, progress: (stage: string) => void): Promise<Uploaded> {
  const s = session();
  const createdAt = ledgerTime(new Date());
  progress("checking the patient's published key");
  const recordKey = await publishedKey(pseudonym, category, recordPeriod(createdAt));
  progress("sealing on this device");
  const contentType = file.type || "application/octet-stream";
  const sealed = await seal({
    plaintext: new Uint8Array(await file.arrayBuffer()),
    recipients: [[pseudonym, recordKey]], scoped: true,
    filename: file.name.replace(/[/\\]/g, "_") || "document", contentType, pseudonym, category, createdAt,
    uploaderId: s.keys.id, signerId: s.keys.id, signingKey: s.keys.signingKey,
  });
  progress("storing the sealed body");
  const query = new URLSearchParams({ pseudonym, category, sha256: sealed.bodySha256 });
  const blob = await postBytes<{ sha256: string; size: number; locators: string[] }>(`/v1/blobs?${query}`, sealed.body);
  if (blob.sha256 !== sealed.bodySha256 || blob.size !== sealed.body.length) {
    throw new RefusedOpen("the gateway stored a body with another SHA-256 or size than the one sealed here");
  }
  progress("committing the record to the ledger");
  const recordId = newId();
  const tx = signTransaction("record", {
    record_id: recordId, pseudonym, category, body_sha256: sealed.bodySha256, size: sealed.body.length,
    locators: blob.locators, capsule_sha256: sealed.capsuleSha256, content_type: contentType, created_at: createdAt,
  });
  const answer = await postJson<{ receipt: Receipt }>("/v1/records", { transaction: tx, capsule: toBase64(sealed.capsule) });
  verifyReceipt(answer.receipt, s.ledgerKey);
  return { recordId, entryIndex: answer.receipt.index };
}
