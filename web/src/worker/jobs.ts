// What the crypto worker does, apart from the worker plumbing (so that node's test runner
// can drive it): open a record's capsule with the reader's keys (the key share's HPKE and
// the X-Wing key derivations are the costly part); open bodies piece by piece as the page
// hands them over, each segment decrypted and checked as it arrives; seal a chosen file
// into a body. Plaintext leaves
// only as the whole verified document.
import { CryptoError, KeyNotHeld, type ReaderKeys, ShareMismatch, SizedBodyOpener, openWithReaderKeys, sealBody } from "../crypto/index.js";
import type { FromWorker, Refusal, ToWorker } from "./protocol.js";

type Post = (message: FromWorker, transfer?: Transferable[]) => void;

interface OpenJob {
  opener: SizedBodyOpener;
  total: number;
  // pieces are handled in order, one at a time
  queue: Promise<void>;
  failed: boolean;
}

export class Jobs {
  private readonly open = new Map<number, OpenJob>();

  constructor(private readonly post: Post) {}

  handle(message: ToWorker): void {
    switch (message.op) {
      case "open": {
        try {
          const opener = new SizedBodyOpener(message.dataKey, message.expected);
          this.open.set(message.job, {
            opener, total: message.expected.body_size, queue: Promise.resolve(), failed: false,
          });
        } catch (error) {
          this.refuse(message.job, error);
        }
        return;
      }
      case "chunk":
        return this.then(message.job, async (job) => {
          await job.opener.update(message.chunk);
          this.post({ job: message.job, progress: job.opener.done, total: job.total });
        });
      case "end":
        return this.then(message.job, async (job) => {
          const plain = await job.opener.finalize();
          this.open.delete(message.job);
          this.post({ job: message.job, opened: new Blob([plain]) });
        });
      case "abort":
        this.open.delete(message.job);
        return;
      case "seal":
        void this.seal(message.job, message.file, message.dataKey, message.salt);
        return;
      case "capsule":
        void this.capsule(message.job, message.capsule, message.recipientId, message.reader);
    }
  }

  private then(id: number, step: (job: OpenJob) => Promise<void>): void {
    const job = this.open.get(id);
    if (job === undefined) return; // refused or aborted already: later pieces are dropped
    job.queue = job.queue.then(async () => {
      if (job.failed) return;
      try {
        await step(job);
      } catch (error) {
        job.failed = true;
        this.open.delete(id);
        this.refuse(id, error);
      }
    });
  }

  private async seal(job: number, file: Blob, dataKey: Uint8Array, salt: Uint8Array): Promise<void> {
    try {
      const plaintext = new Uint8Array(await file.arrayBuffer());
      const sealed = await sealBody(dataKey, salt, plaintext, (done, total) => this.post({ job, progress: done, total }));
      this.post({ job, sealed: { ...sealed, plaintextSize: plaintext.length } }, [sealed.body.buffer]);
    } catch (error) {
      this.refuse(job, error);
    }
  }

  private async capsule(job: number, capsule: Uint8Array, recipientId: string, reader: ReaderKeys): Promise<void> {
    try {
      const opened = await openWithReaderKeys(capsule, recipientId, reader);
      this.post({ job, capsule: { metadata: opened.metadata, dataKey: opened.dataKey } });
    } catch (error) {
      this.refuse(job, error);
    }
  }

  private refuse(job: number, error: unknown): void {
    const refusal: Refusal = error instanceof KeyNotHeld ? "key-not-held"
      : error instanceof ShareMismatch ? "share-mismatch"
      : error instanceof CryptoError ? "crypto" : "other";
    this.post({ job, error: refusal === "other" ? `the crypto worker failed: ${String(error)}` : (error as Error).message, refusal });
  }
}
