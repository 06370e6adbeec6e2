// Clinician (and system) view: open a patient by pseudonym, see the records by category,
// open one on the device.
import { CryptoError, isPseudonym, pseudonymFromLinkCode } from "../../crypto/index.js";
import { field, h, mount, progressBar, showStatus } from "../dom.js";
import { explain, listRecords } from "../records.js";
import { recordsByCategory } from "./records.js";
import { type UploadStage, uploadSealed } from "../upload.js";
import { postJson } from "../api.js";
import { signTransaction } from "../session.js";
import { CATEGORIES } from "./patient.js";

/**
 * The patient named by a pseudonym (64 hexadecimal characters) or a link code (a typo in
 * it is caught by its check characters); null, with the reason shown, when it is neither.
 */
export function patientFrom(text: string): string | null {
  const value = text.trim().toLowerCase();
  const length = value.length;
  if (isPseudonym(value)) return value;
  if (/^[0-9a-f]{60,68}$/.test(value)) {
    showStatus("error", `A pseudonym is 64 hexadecimal characters; this one has ${length}.`);
    return null;
  }
  try {
    return pseudonymFromLinkCode(value);
  } catch (error) {
    const why = error instanceof CryptoError ? error.message : String(error);
    showStatus("error", `Give a pseudonym (64 hexadecimal characters) or a link code: ${why}.`);
    return null;
  }
}

function requestForm(patient: HTMLInputElement): HTMLElement {
  const boxes = CATEGORIES.map((name) => h("input", { type: "checkbox", value: name }));
  const reason = h("input", { type: "text", autocomplete: "off" });
  const form = h("form", { "aria-labelledby": "request-title" },
    h("h2", { id: "request-title" }, "Ask the patient for read access"),
    h("p", {}, "For the patient named by the pseudonym above; the patient sees the request and may grant it."),
    h("fieldset", {}, h("legend", {}, "Categories"), ...boxes.map((box) => h("label", {}, box, box.value))),
    field("Why", reason),
    h("button", { type: "submit" }, "Request access"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const pseudonym = patientFrom(patient.value);
    const categories = boxes.filter((b) => b.checked).map((b) => b.value).sort();
    if (pseudonym === null || categories.length === 0 || reason.value.trim() === "") {
      showStatus("error", "Give the patient's pseudonym or link code above, at least one category and a reason.");
      return;
    }
    void (async () => {
      try {
        await postJson("/v1/access-requests", signTransaction("access_request", { pseudonym, rights: ["read"], categories, reason: reason.value.trim() }));
        showStatus("ok", `Asked for read access to ${categories.join(", ")}.`);
      } catch (error) {
        showStatus("error", `Not requested. ${explain(error)}`);
      }
    })();
  });
  return form;
}

const STAGES: Record<UploadStage, string> = {
  checking: "checking the patient's published key",
  sealing: "sealing on this device",
  sending: "sending the sealed body",
  committing: "committing the record to the ledger",
};

function uploadForm(pseudonym: string): HTMLElement {
  const file = h("input", { type: "file", accept: "application/pdf,.pdf" });
  const category = h("select", {}, ...CATEGORIES.map((name) => h("option", { value: name }, name)));
  const progress = progressBar("Upload progress", "upload-progress");
  const form = h("form", { "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Upload a document (sealed on this device)"),
    field("Document", file), field("Category", category),
    h("button", { type: "submit" }, "Seal and upload"),
    progress.element);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (chosen === undefined) {
      showStatus("error", "Choose a document first.");
      return;
    }
    void (async () => {
      try {
        let shown: UploadStage | null = null;
        const done = await uploadSealed(chosen, pseudonym, category.value, (stage, bytes, total) => {
          if (bytes !== undefined && total !== undefined) progress.set(STAGES[stage], bytes, total);
          if (stage !== shown) showStatus("info", `Uploading: ${STAGES[stage]}…`);
          shown = stage;
        });
        showStatus("ok", `Uploaded ${chosen.name} to ${category.value}: ledger entry ${done.entryIndex}, record ${done.recordId}.`);
      } catch (error) {
        progress.hide();
        showStatus("error", `Not uploaded. ${explain(error)}`);
      }
    })();
  });
  return form;
}

/** The clinician's view; `wanted`, a pseudonym or link code from the app's link, is opened at once. */
export function clinicianView(wanted: string | null = null): void {
  const input = h("input", {
    type: "text", inputmode: "latin", autocomplete: "off", spellcheck: "false",
    placeholder: "64 hexadecimal characters, or the patient's link code",
  });
  const list = h("div", { id: "records", "aria-live": "polite" });
  const document = h("div", { id: "document" });
  const form = h("form", { "aria-labelledby": "patient-title" },
    h("h2", { id: "patient-title" }, "Open a patient"),
    field("Patient pseudonym or link code", input),
    h("button", { type: "submit" }, "Show records"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const pseudonym = patientFrom(input.value);
    if (pseudonym === null) {
      input.focus();
      return;
    }
    void (async () => {
      try {
        list.replaceChildren(h("p", {}, "Loading…"));
        document.replaceChildren();
        const records = await listRecords(pseudonym);
        list.replaceChildren(h("h2", {}, "Records"), recordsByCategory(records, document), uploadForm(pseudonym));
        showStatus("info", `${records.length} record(s) you may see of patient ${pseudonym.slice(0, 12)}….`);
      } catch (error) {
        list.replaceChildren();
        showStatus("error", explain(error));
      }
    })();
  });
  mount(h("section", {}, form), h("section", { "aria-label": "Records" }, list), document, h("section", {}, requestForm(input)));
  input.focus();
  if (wanted !== null) {
    input.value = wanted;
    form.requestSubmit();
  }
}
