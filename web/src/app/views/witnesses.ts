// "Witnesses": the reader's witness policy (k of n witness vkeys, kept in this browser) and
// the split-view evidence found on this device, each downloadable as the SDK's evidence
// JSON. Reachable signed in or not (#/witnesses): the policy belongs to the device.
import { field, h, mount, showStatus, table } from "../dom.js";
import { DEFAULT_WAIT, PolicyError, WitnessPolicy, parsePolicyText } from "../witness/policy.js";
import { type Evidence, deleteEvidence, evidenceList, loadPolicy, savePolicy } from "../witness/store.js";

function download(evidence: Evidence): HTMLAnchorElement {
  const blob = new Blob([`${JSON.stringify(evidence, null, 2)}\n`], { type: "application/json" });
  const stamp = evidence.found_at.replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return h("a", { href: URL.createObjectURL(blob), download: `split-view-${stamp}.json`, class: "evidence-download" }, "Download the evidence");
}

/** Both signed views of a split view, as the gateway signed them, and the download. */
export function evidenceBlock(evidence: Evidence): HTMLElement {
  return h("div", { class: "evidence" },
    h("p", {}, h("strong", {}, "Split view: "), evidence.reason, ` (${evidence.gateway}, ${evidence.found_at})`),
    ...evidence.views.map((view) => h("div", {}, h("p", {}, view.what),
      h("pre", {}, typeof view.signed === "string" ? view.signed : JSON.stringify(view.signed, null, 2)))),
    h("p", {}, download(evidence)));
}

/** The alarm shown above every view once a split view is found (and on later visits). */
export function showSplitViewAlarm(): void {
  const list = evidenceList();
  let alarm = document.getElementById("witness-alarm");
  if (list.length === 0) {
    alarm?.remove();
    return;
  }
  if (alarm === null) {
    alarm = h("section", { id: "witness-alarm", role: "alert", class: "message error", "aria-labelledby": "alarm-title" });
    document.getElementById("status")?.before(alarm);
  }
  alarm.replaceChildren(
    h("h2", { id: "alarm-title" }, `This gateway's log showed two histories (${list.length} split view${list.length > 1 ? "s" : ""} kept on this device)`),
    h("p", {}, "Reads that rely on it are refused. Give the evidence to the hospital's auditors; it proves the fork to anyone who holds the log's key."),
    evidenceBlock(list[list.length - 1] as Evidence),
    h("p", {}, h("a", { href: "#/witnesses" }, "All evidence and the witness policy")));
}

function storedPolicy(): WitnessPolicy | null {
  try {
    return loadPolicy();
  } catch (error) {
    showStatus("error", `The kept witness policy cannot be read (${String(error)}): reads are refused until it is saved again or removed.`);
    return null;
  }
}

export function witnessesView(done: () => void): void {
  const current = storedPolicy();
  const keys = h("textarea", { spellcheck: "false", rows: "6" });
  keys.value = current?.settings().witnesses.join("\n") ?? "";
  const quorum = h("input", { type: "number", min: "1", step: "1", value: current === null ? "" : String(current.quorum) });
  const wait = h("input", { type: "number", min: "0", max: "3600", step: "any", value: String(current?.waitSeconds ?? DEFAULT_WAIT) });
  const summary = h("p", { id: "policy-summary" }, current === null
    ? "No witness policy: tree heads are checked against the pinned ledger key only."
    : `${current.quorum} of ${current.witnesses.length} witnesses must cosign: ${current.names.join(", ")}.`);
  const form = h("form", { "aria-labelledby": "policy-title" },
    h("h2", { id: "policy-title" }, "Witness policy"),
    summary,
    field("Witness keys (vkeys, one a line, or the SDK's policy.toml)", keys),
    field("Quorum (k)", quorum),
    field("Wait for the witnesses (seconds)", wait),
    h("button", { type: "submit" }, "Save the policy"),
    h("button", { type: "button", class: "secondary", onclick: () => { savePolicy(null); showStatus("ok", "Witness policy removed."); witnessesView(done); } }, "Remove the policy"),
    h("button", { type: "button", class: "secondary", onclick: () => done() }, "Back"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      const settings = parsePolicyText(keys.value, quorum.value === "" ? null : Number(quorum.value), wait.value === "" ? null : Number(wait.value));
      const policy = WitnessPolicy.of(settings);
      savePolicy(policy);
      showStatus("ok", `Witness policy saved: ${policy.quorum} of ${policy.witnesses.length} (${policy.names.join(", ")}).`);
      witnessesView(done);
    } catch (error) {
      showStatus("error", error instanceof PolicyError ? `Not saved: ${error.message}` : `Not saved: ${String(error)}`);
    }
  });
  const list = evidenceList();
  const evidence = h("section", { "aria-labelledby": "evidence-title" },
    h("h2", { id: "evidence-title" }, "Split-view evidence on this device"),
    list.length === 0 ? h("p", {}, "None.") : table(["Found", "Reason", ""], list.map((item, index) => [
      item.found_at, item.reason,
      h("span", {}, download(item), " ", h("button", { type: "button", class: "secondary", onclick: () => { deleteEvidence(index); showSplitViewAlarm(); witnessesView(done); } }, "Delete")),
    ]), "Split views found"));
  mount(h("section", {}, form), evidence);
}
