// The crypto worker's entry point (built to dist/worker.js, loaded from /app/ under the
// same Content-Security-Policy as the page).
import { Jobs } from "./jobs.js";
import type { FromWorker, ToWorker } from "./protocol.js";

const scope = globalThis as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const jobs = new Jobs((message, transfer) => scope.postMessage(message, transfer ?? []));
scope.onmessage = (event) => jobs.handle(event.data);
