// The messages between the page and the crypto worker (worker/main.ts). The page does the
// network; the worker does the bulk crypto of bodies, so a large PDF never stalls the page.
import type { BodyExpectation, Metadata, ReaderKeys } from "../crypto/index.js";

export type ToWorker =
  | { op: "open"; job: number; dataKey: Uint8Array; expected: BodyExpectation }
  | { op: "chunk"; job: number; chunk: Uint8Array }
  | { op: "end"; job: number }
  | { op: "abort"; job: number }
  | { op: "seal"; job: number; file: Blob; dataKey: Uint8Array; salt: Uint8Array }
  | { op: "capsule"; job: number; capsule: Uint8Array; recipientId: string; reader: ReaderKeys };

/** Why the worker refused: a crypto failure, a key not shared with the reader, or a key
 * share that differs from its ledger entry. */
export type Refusal = "crypto" | "key-not-held" | "share-mismatch" | "other";

export interface SealedInWorker {
  body: Uint8Array<ArrayBuffer>;
  bodySha256: string;
  plaintextSha256: string;
  plaintextSize: number;
}

export type FromWorker =
  | { job: number; progress: number; total: number }
  | { job: number; opened: Blob }
  | { job: number; sealed: SealedInWorker }
  | { job: number; capsule: { metadata: Metadata; dataKey: Uint8Array } }
  | { job: number; error: string; refusal: Refusal };
