// The messages between the page and the crypto worker (worker/main.ts). The page does the
// network; the worker does the bulk crypto of bodies, so a large PDF never stalls the page.
import type { BodyExpectation } from "../crypto/index.js";

export type ToWorker =
  | { op: "open"; job: number; dataKey: Uint8Array; expected: BodyExpectation }
  | { op: "chunk"; job: number; chunk: Uint8Array }
  | { op: "end"; job: number }
  | { op: "abort"; job: number }
  | { op: "seal"; job: number; file: Blob; dataKey: Uint8Array; salt: Uint8Array };

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
  | { job: number; error: string; crypto: boolean };
