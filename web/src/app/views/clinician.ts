// Clinician (and system) view: open a patient by pseudonym, see the records by category,
// open one on the device.
import { isPseudonym } from "../../crypto/index.js";
import { field, h, mount, showStatus } from "../dom.js";
import { explain, listRecords } from "../records.js";
import { recordsByCategory } from "./records.js";
import { uploadSealed } from "../upload.js";
import { postJson } from "../api.js";
import { signTransaction } from "../session.js";
import { CATEGORIES } from "./patient.js";

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
    const pseudonym = patient.value.trim().toLowerCase();
    const categories = boxes.filter((b) => b.checked).map((b) => b.value).sort();
    if (!isPseudonym(pseudonym) || categories.length === 0 || reason.value.trim() === "") {
      showStatus("error", "Give the patient's pseudonym above, at least one category and a reason.");
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

function uploadForm(pseudonym: string): HTMLElement {
  const file = h("input", { type: "file", accept: "application/pdf,.pdf" });
  const category = h("select", {}, ...CATEGORIES.map((name) => h("option", { value: name }, name)));
  const form = h("form", { "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Upload a document (sealed on this device)"),
    field("Document", file), field("Category", category),
    h("button", { type: "submit" }, "Seal and upload"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (chosen === undefined) {
      showStatus("error", "Choose a document first.");
      return;
    }
    void (async () => {
      try {
        const done = await uploadSealed(chosen, pseudonym, category.value, (stage) => showStatus("info", `Uploading: ${stage}…`));
        showStatus("ok", `Uploaded ${chosen.name} to ${category.value}: ledger entry ${done.entryIndex}, record ${done.recordId}.`);
      } catch (error) {
        showStatus("error", `Not uploaded. ${explain(error)}`);
      }
    })();
  });
  return form;
}

export function clinicianView(): void {
  const input = h("input", { type: "text", inputmode: "latin", autocomplete: "off", spellcheck: "false", placeholder: "64 hexadecimal characters" });
  const list = h("div", { id: "records", "aria-live": "polite" });
  const document = h("div", { id: "document" });
  const form = h("form", { "aria-labelledby": "patient-title" },
    h("h2", { id: "patient-title" }, "Open a patient"),
    field("Patient pseudonym", input),
    h("button", { type: "submit" }, "Show records"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const pseudonym = input.value.trim().toLowerCase();
    if (!isPseudonym(pseudonym)) {
      showStatus("error", "A pseudonym is 64 hexadecimal characters.");
      input.focus();
      return;
    }
    void (async () => {
      try {
        list.replaceChildren(h("p", {}, "Loading…"));
        document.replaceChildren();
        const records = await listRecords(pseudonym);
        list.replaceChildren(h("h2", {}, "Records"), recordsByCategory(records, document), uploadForm(pseudonym));
        showStatus("info", `${records.length} record(s) you may see.`);
      } catch (error) {
        list.replaceChildren();
        showStatus("error", explain(error));
      }
    })();
  });
  mount(h("section", {}, form), h("section", { "aria-label": "Records" }, list), document, h("section", {}, requestForm(input)));
  input.focus();
}
