// Clinician (and system) view: open a patient by pseudonym, see the records by category,
// open one on the device.
import { isPseudonym } from "../../crypto/index.js";
import { field, h, mount, showStatus } from "../dom.js";
import { explain, listRecords } from "../records.js";
import { recordsByCategory } from "./records.js";

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
        list.replaceChildren(h("h2", {}, "Records"), recordsByCategory(records, document));
        showStatus("info", `${records.length} record(s) you may see.`);
      } catch (error) {
        list.replaceChildren();
        showStatus("error", explain(error));
      }
    })();
  });
  mount(h("section", {}, form), h("section", { "aria-label": "Records" }, list), document);
  input.focus();
}
