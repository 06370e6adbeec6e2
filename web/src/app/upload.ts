// A clinician's upload, sealed on the device (the gateway only ever sees the sealed body and
// the capsule): seal to the patient's published key of (category, month of created_at),
// checked first (app/scopedkeys.ts); the body is sealed in the crypto worker (progress in
// bytes), the capsule signed here as the uploader; the body is sent with upload progress
// (POST /v1/blobs, refused before anything is stored without a write right), then the signed
// `record` with the capsule is committed (POST /v1/records) and its receipt checked.
import { finishSeal, freshBodyKeys, recordPeriod, toBase64, verifyReceipt, type Receipt } from "../crypto/index.js";
import { postBytesWithProgress, postJson } from "./api.js";
import { sealInWorker } from "./cryptoworker.js";
import { publishedKey } from "./scopedkeys.js";
import { RefusedOpen } from "./records.js";
import { ledgerTime, newId, session, signTransaction } from "./session.js";

export interface Uploaded {
  recordId: string;
  entryIndex: number;
}

export type UploadStage = "checking" | "sealing" | "sending" | "committing";

export interface UploadProgress {
  (stage: UploadStage, done?: number, total?: number): void;
}

export async function uploadSealed(file: File, pseudonym: string, category: string, progress: UploadProgress): Promise<Uploaded> {
  const s = session();
  const createdAt = ledgerTime(new Date());
  progress("checking");
  const recordKey = await publishedKey(pseudonym, category, recordPeriod(createdAt));
  const contentType = file.type || "application/octet-stream";
  const { dataKey, salt } = freshBodyKeys();
  progress("sealing", 0, file.size);
  const body = await sealInWorker(file, dataKey, salt, (done, total) => progress("sealing", done, total));
  const sealed = await finishSeal({
    recipients: [[pseudonym, recordKey]], scoped: true,
    filename: file.name.replace(/[/\\]/g, "_") || "document", contentType, pseudonym, category, createdAt,
    uploaderId: s.keys.id, signerId: s.keys.id, signingKey: s.keys.signingKey,
  }, body, body.plaintextSize, dataKey);
  progress("sending", 0, sealed.body.length);
  const query = new URLSearchParams({ pseudonym, category, sha256: sealed.bodySha256 });
  const blob = await postBytesWithProgress<{ sha256: string; size: number; locators: string[] }>(
    `/v1/blobs?${query}`, new Blob([sealed.body]), (sent, total) => progress("sending", sent, total));
  if (blob.sha256 !== sealed.bodySha256 || blob.size !== sealed.body.length) {
    throw new RefusedOpen("the gateway stored a body with another SHA-256 or size than the one sealed here");
  }
  progress("committing");
  const recordId = newId();
  const tx = signTransaction("record", {
    record_id: recordId, pseudonym, category, body_sha256: sealed.bodySha256, size: sealed.body.length,
    locators: blob.locators, capsule_sha256: sealed.capsuleSha256, content_type: contentType, created_at: createdAt,
  });
  const answer = await postJson<{ receipt: Receipt }>("/v1/records", { transaction: tx, capsule: toBase64(sealed.capsule) });
  verifyReceipt(answer.receipt, s.ledgerKey);
  return { recordId, entryIndex: answer.receipt.index };
}
