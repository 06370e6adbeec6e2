// Records of one patient, by category, each with an Open button that verifies on the device.
import { type ProgressBar, h, localTime, progressBar, showStatus, table } from "../dom.js";
import { type RecordOut, explain, openRecord } from "../records.js";
import { viewer } from "./viewer.js";

export function recordsByCategory(records: RecordOut[], target: HTMLElement): HTMLElement {
  if (records.length === 0) return h("p", {}, "No records you may see.");
  const categories = [...new Set(records.map((r) => r.category))].sort();
  const progress = progressBar("Download and decryption progress", "open-progress");
  const parts: HTMLElement[] = [progress.element];
  for (const category of categories) {
    const rows = records.filter((r) => r.category === category).map((record) => [
      localTime(record.created_at),
      record.on_behalf_of ? `${record.on_behalf_of} (via ${record.uploader})` : record.uploader,
      `${record.size.toLocaleString()} bytes`,
      h("button", {
        type: "button", class: "secondary", "data-record": record.record_id,
        "aria-label": `Open the ${category} record of ${localTime(record.created_at)}`,
        onclick: () => void open(record, progress, target),
      }, "Open"),
    ]);
    parts.push(h("h3", {}, category), table(["Date", "Uploader", "Size", ""], rows, `${category} records`));
  }
  return h("div", {}, ...parts);
}

async function open(record: RecordOut, progress: ProgressBar, target: HTMLElement): Promise<void> {
  target.replaceChildren();
  progress.set("Received, decrypted and checked", 0, record.size);
  showStatus("info", "Opening: checking the ledger proof, the capsule, each segment and the signature…");
  try {
    const opened = await openRecord(record.record_id, (done, total) => progress.set("Received, decrypted and checked", done, total));
    progress.set("Received, decrypted and checked", record.size, record.size);
    target.replaceChildren(viewer(opened));
    showStatus("ok", `Verified and opened ${opened.metadata.filename}.`);
  } catch (error) {
    progress.hide();
    showStatus("error", explain(error));
  }
}
