// The page's side of the crypto worker (worker/): bodies are decrypted and checked, and
// uploads sealed, off the page's thread. One worker serves the page; each open or seal is
// a job with its own progress.
import { type BodyExpectation, CryptoError, KeyNotHeld, type Metadata, type ReaderKeys, ShareMismatch } from "../crypto/index.js";
import type { FromWorker, Refusal, SealedInWorker, ToWorker } from "../worker/protocol.js";

type Result = Blob | SealedInWorker | OpenedInWorker;

export interface OpenedInWorker {
  metadata: Metadata;
  dataKey: Uint8Array;
}

function refusal(kind: Refusal, message: string): Error {
  if (kind === "key-not-held") return new KeyNotHeld(message);
  if (kind === "share-mismatch") return new ShareMismatch(message);
  if (kind === "crypto") return new CryptoError(message);
  return new Error(message);
}

type Progress = (done: number, total: number) => void;

interface Pending {
  progress: Progress;
  resolve: (value: Result) => void;
  reject: (error: Error) => void;
}

let worker: Worker | null = null;
let nextJob = 1;
const pending = new Map<number, Pending>();

function failAll(reason: string): void {
  for (const job of pending.values()) job.reject(new Error(reason));
  pending.clear();
  worker?.terminate();
  worker = null;
}

function theWorker(): Worker {
  if (worker !== null) return worker;
  const started = new Worker(new URL("worker.js", document.baseURI));
  started.onmessage = (event: MessageEvent<FromWorker>) => {
    const message = event.data;
    const job = pending.get(message.job);
    if (job === undefined) return;
    if ("progress" in message) return job.progress(message.progress, message.total);
    pending.delete(message.job);
    if ("error" in message) job.reject(refusal(message.refusal, message.error));
    else job.resolve("opened" in message ? message.opened : "sealed" in message ? message.sealed : message.capsule);
  };
  started.onerror = (event) => {
    event.preventDefault();
    failAll(`the crypto worker stopped: ${event.message || "it could not be loaded"}`);
  };
  worker = started;
  return started;
}

function send(message: ToWorker, transfer: Transferable[] = []): void {
  theWorker().postMessage(message, transfer);
}

function track<T extends Result>(job: number, progress: Progress): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    pending.set(job, { progress, resolve: resolve as (value: Result) => void, reject });
  });
}

/** Open a record's capsule in the worker with what the reader holds. */
export function openCapsuleInWorker(capsule: Uint8Array, recipientId: string, reader: ReaderKeys): Promise<OpenedInWorker> {
  const job = nextJob++;
  const result = track<OpenedInWorker>(job, () => undefined);
  send({ op: "capsule", job, capsule, recipientId, reader });
  return result;
}

/** A body being opened in the worker: push its pieces as they arrive, then `finish`. */
export interface BodyJob {
  push(chunk: Uint8Array): void;
  finish(): Promise<Blob>;
  abort(): void;
}

export function openInWorker(dataKey: Uint8Array, expected: BodyExpectation, progress: Progress): BodyJob {
  const job = nextJob++;
  const result = track<Blob>(job, progress);
  // an early refusal (a bad piece) is seen at finish; nothing waits on it before
  result.catch(() => undefined);
  send({ op: "open", job, dataKey, expected: {
    body_sha256: expected.body_sha256, body_size: expected.body_size,
    plaintext_sha256: expected.plaintext_sha256, plaintext_size: expected.plaintext_size,
  } });
  return {
    push(chunk) {
      // fetch hands out fresh buffers: give them to the worker rather than copying
      const whole = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
      send({ op: "chunk", job, chunk }, whole ? [chunk.buffer as ArrayBuffer] : []);
    },
    finish() {
      send({ op: "end", job });
      return result;
    },
    abort() {
      pending.delete(job);
      send({ op: "abort", job });
    },
  };
}

/** Seal `file` into a body in the worker under `dataKey` and `salt`. */
export function sealInWorker(file: Blob, dataKey: Uint8Array, salt: Uint8Array, progress: Progress): Promise<SealedInWorker> {
  const job = nextJob++;
  const result = track<SealedInWorker>(job, progress);
  send({ op: "seal", job, file, dataKey, salt });
  return result;
}
