// Admin view: enroll a public key file, suspend, the identities on the ledger, the ledger head.
import { fromBase64, verifyTreeHead, type TreeHead } from "../../crypto/index.js";
import { getJson, postJson } from "../api.js";
import { field, h, localTime, mount, showStatus, table } from "../dom.js";
import { explain } from "../records.js";
import { advancePin, session, signTransaction } from "../session.js";
import { requireWitnessed } from "../witness/witnessed.js";

interface Entry {
  index: number;
  tx: { type: string; body: Record<string, unknown>; signer: string };
}

const ROLES = ["clinician", "system", "auditor", "admin"];

function parsePublicIdentity(text: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error("the public key file is not JSON");
  }
  const identity = (typeof value === "object" && value !== null && "identity" in value ? (value as { identity: unknown }).identity : value) as Record<string, unknown>;
  for (const name of ["id", "role", "signing_public_key", "encryption_public_key"]) {
    if (typeof identity?.[name] !== "string") throw new Error(`the public key file has no ${name}`);
  }
  if (!ROLES.includes(identity.role as string)) throw new Error(`role ${String(identity.role)} cannot be enrolled here`);
  if (fromBase64(identity.signing_public_key as string).length !== 32) throw new Error("the signing key is not 32 bytes");
  if (fromBase64(identity.encryption_public_key as string).length !== 1216) throw new Error("the encryption key is not 1,216 bytes");
  return { id: identity.id as string, role: identity.role as string,
    signing_public_key: identity.signing_public_key as string, encryption_public_key: identity.encryption_public_key as string };
}

async function allEntries(): Promise<Entry[]> {
  const out: Entry[] = [];
  let start: number | null = 0;
  while (start !== null) {
    const page: { entries: Entry[]; next_start: number | null } = await getJson(`/v1/ledger/entries?start=${start}&limit=1000`);
    out.push(...page.entries);
    start = page.next_start;
  }
  return out;
}

function identitiesTable(entries: Entry[]): HTMLElement {
  const identities = new Map<string, { role: string; since: string; suspended: string | null }>();
  for (const { tx } of entries) {
    const body = tx.body;
    if (tx.type === "enroll" || tx.type === "genesis") {
      const identity = (tx.type === "genesis" ? body.admin : body.identity) as { id: string; role: string };
      identities.set(identity.id, { role: identity.role, since: String(body.issued_at), suspended: null });
    } else if (tx.type === "register_patient") {
      identities.set(String(body.pseudonym), { role: "patient", since: String(body.issued_at), suspended: null });
    } else if (tx.type === "suspend") {
      const known = identities.get(String(body.identity_id));
      if (known !== undefined) known.suspended = String(body.reason ?? "");
    }
  }
  const rows = [...identities].map(([id, info]) => [
    id, info.role, localTime(info.since), info.suspended === null ? "active" : `suspended: ${info.suspended}`]);
  return table(["Identity", "Role", "Since", "State"], rows, "Identities on the ledger");
}

export function adminView(): void {
  const identities = h("div", { id: "identities" });
  const head = h("div", { id: "ledger-head" });
  const refresh = async (): Promise<void> => {
    try {
      identities.replaceChildren(identitiesTable(await allEntries()));
      const answer = await getJson<{ tree_head: TreeHead | null }>("/v1/ledger/head");
      const s = session();
      if (answer.tree_head === null) {
        head.replaceChildren(h("p", {}, "The ledger is empty."));
        return;
      }
      verifyTreeHead(answer.tree_head, s.ledgerKey);
      head.replaceChildren(h("dl", {},
        h("dt", {}, "Entries"), h("dd", { id: "tree-size" }, String(answer.tree_head.tree_size)),
        h("dt", {}, "Root"), h("dd", {}, h("code", {}, answer.tree_head.root)),
        h("dt", {}, "Signed"), h("dd", {}, localTime(answer.tree_head.timestamp)),
        h("dt", {}, "Signature"), h("dd", {}, "verified with the ledger key pinned at sign-in")));
    } catch (error) {
      showStatus("error", explain(error));
    }
  };
  const verifyNow = async (): Promise<void> => {
    try {
      const answer = await getJson<{ tree_head: TreeHead | null }>("/v1/ledger/head");
      if (answer.tree_head === null) throw new Error("the ledger is empty");
      const consistent = await advancePin(answer.tree_head);
      const witnessed = await requireWitnessed(answer.tree_head);
      showStatus("ok", `Ledger verified: signed head ${answer.tree_head.tree_size} entries, ${consistent}${witnessed === null ? "" : `, ${witnessed}`}.`);
      await refresh();
    } catch (error) {
      showStatus("error", `Ledger NOT verified: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const pasted = h("textarea", { spellcheck: "false" });
  const upload = h("input", { type: "file", accept: ".json,application/json" });
  upload.addEventListener("change", () => {
    void upload.files?.[0]?.text().then((text) => { pasted.value = text; });
  });
  const enroll = h("form", { "aria-labelledby": "enroll-title" },
    h("h2", { id: "enroll-title" }, "Enroll an identity"),
    field("Public key file (paste)", pasted), field("…or choose the file", upload),
    h("button", { type: "submit" }, "Enroll"));
  enroll.addEventListener("submit", (event) => {
    event.preventDefault();
    void (async () => {
      try {
        const identity = parsePublicIdentity(pasted.value);
        await postJson("/v1/identities", signTransaction("enroll", { identity }));
        showStatus("ok", `Enrolled ${identity.id} as ${identity.role}.`);
        pasted.value = "";
        await refresh();
      } catch (error) {
        showStatus("error", error instanceof Error && !(error.name === "ApiError") ? `Not enrolled: ${error.message}` : explain(error));
      }
    })();
  });
  const who = h("input", { type: "text", autocomplete: "off" });
  const reason = h("input", { type: "text", autocomplete: "off" });
  const suspend = h("form", { "aria-labelledby": "suspend-title" },
    h("h2", { id: "suspend-title" }, "Suspend an identity"),
    field("Identity id", who), field("Reason", reason),
    h("button", { type: "submit" }, "Suspend"));
  suspend.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = who.value.trim();
    if (id === "" || reason.value.trim() === "") {
      showStatus("error", "Give the identity and a reason.");
      return;
    }
    void (async () => {
      try {
        await postJson(`/v1/identities/${encodeURIComponent(id)}/suspend`, signTransaction("suspend", { identity_id: id, reason: reason.value.trim() }));
        showStatus("ok", `Suspended ${id}; its tokens stop working at once.`);
        await refresh();
      } catch (error) {
        showStatus("error", explain(error));
      }
    })();
  });
  mount(
    h("section", {}, enroll),
    h("section", {}, suspend),
    h("section", { "aria-labelledby": "ids-title" }, h("h2", { id: "ids-title" }, "Identities"), identities),
    h("section", { "aria-labelledby": "head-title" }, h("h2", { id: "head-title" }, "Ledger head"), head,
      h("button", { type: "button", class: "secondary", onclick: () => void refresh() }, "Refresh"),
      h("button", { type: "button", onclick: () => void verifyNow() }, "Verify now")),
  );
  void refresh();
}
