// Shows a verified document: a blob: URL in an <object> (the CSP allows blob: for objects
// and frames only), with the checks that passed and a download link.
import { localTime, h } from "../dom.js";
import type { OpenedRecord } from "../records.js";

let lastUrl: string | null = null;

export function viewer(opened: OpenedRecord): HTMLElement {
  if (lastUrl !== null) URL.revokeObjectURL(lastUrl);
  const url = URL.createObjectURL(opened.plaintext);
  lastUrl = url;
  const meta = opened.metadata;
  return h("section", { "aria-labelledby": "viewer-title", "data-record-sha256": meta.plaintext_sha256 },
    h("h2", { id: "viewer-title" }, meta.filename),
    h("p", {}, `${meta.category}, uploaded by ${meta.uploader_id}, ${localTime(meta.created_at)}, ${meta.plaintext_size.toLocaleString()} bytes`),
    h("ul", { class: "checks", "aria-label": "Checks that passed" }, ...opened.checks.map((check) => h("li", {}, check))),
    h("object", { class: "viewer", data: url, type: meta.content_type, "aria-label": `Document ${meta.filename}` },
      h("p", {}, "This browser cannot show the document inline; use the download link.")),
    h("p", {}, h("a", { href: url, download: meta.filename, id: "download-link" }, `Download ${meta.filename}`)));
}
