// A new patient, on the device: K and identity keys made here, the pseudonym computed from
// identifying fields typed here (they are never sent or stored), the registration signed
// here; the key file is offered as a download and the patient is signed in.
import {
  type IdentityKeys, createPatientKeys, encodeKeyFile, recordPrivateKey, signJson, toBase64,
} from "../../crypto/index.js";
import { postJson } from "../api.js";
import { field, h, showStatus } from "../dom.js";
import { explain } from "../records.js";
import { publishKeys } from "../scopedkeys.js";
import { ledgerTime, newId, signIn } from "../session.js";

function registration(keys: IdentityKeys): Record<string, unknown> {
  const body = {
    pseudonym: keys.pseudonym,
    identity: {
      id: keys.id, role: "patient",
      signing_public_key: toBase64(keys.verifyKey), encryption_public_key: toBase64(keys.encryptionKey.publicKey),
    },
    record_public_key: toBase64(createRecordPublic(keys)),
    tx_id: newId(),
    issued_at: ledgerTime(new Date()),
  };
  const payload = { type: "register_patient", body, signer: keys.id };
  return { ...payload, signature: signJson(keys.signingKey, payload) };
}

function createRecordPublic(keys: IdentityKeys): Uint8Array {
  return recordPrivateKey(keys.patientKey!, 2).publicKey;
}

export function registerForm(onSignedIn: () => void): HTMLElement {
  const name = h("input", { type: "text", autocomplete: "off" });
  const birth = h("input", { type: "text", autocomplete: "off", placeholder: "YYYY-MM-DD" });
  const national = h("input", { type: "text", autocomplete: "off" });
  const passphrase = h("input", { type: "password", autocomplete: "new-password" });
  const result = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Create my keys and register");
  const form = h("form", { "aria-labelledby": "register-title" },
    h("h2", { id: "register-title" }, "New patient"),
    h("p", {}, "Your identifying fields stay in this browser: only the pseudonym computed from them and your public keys are sent. Keep the key file safe: without it your records cannot be opened."),
    field("Full name", name), field("Birth date", birth), field("National id (optional)", national),
    field("Passphrase for the key file (recommended)", passphrase),
    submit, result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const uii: Record<string, string> = {};
    if (name.value.trim() !== "") uii.name = name.value;
    if (birth.value.trim() !== "") uii.birth_date = birth.value;
    if (national.value.trim() !== "") uii.national_id = national.value;
    if (uii.name === undefined || uii.birth_date === undefined) {
      showStatus("error", "Give at least your full name and birth date.");
      return;
    }
    submit.disabled = true;
    void (async () => {
      try {
        showStatus("info", "Making your keys on this device…");
        const keys = createPatientKeys(uii);
        const file = await encodeKeyFile(keys, passphrase.value || undefined);
        passphrase.value = "";
        await postJson("/v1/patients", registration(keys));
        const url = URL.createObjectURL(new Blob([file], { type: "application/json" }));
        result.replaceChildren(h("p", {}, h("a", { href: url, download: "patient.key", id: "key-file-link" }, "Download your key file (patient.key)")));
        await signIn(keys);
        showStatus("info", "Registered; publishing your record keys (every category, this month and the next 24)…");
        const published = await publishKeys().catch((error: unknown) => {
          showStatus("error", `Registered, but your record keys were not published (uploads to you need them). ${explain(error)}`);
          return null;
        });
        if (published !== null) showStatus("ok", `Registered, ${published} record keys published. Your pseudonym is ${keys.pseudonym}. Download your key file now.`);
        onSignedIn();
        document.getElementById("main")?.prepend(h("section", {}, result));
      } catch (error) {
        showStatus("error", `Not registered. ${explain(error)}`);
      } finally {
        submit.disabled = false;
      }
    })();
  });
  return form;
}
