// Sign in with a key file: read and (with a passphrase) decrypted in the browser; the
// challenge is signed here; nothing secret leaves the device.
import { KeyFileError, keyFileNeedsPassphrase, loadKeyFile } from "../../crypto/index.js";
import { explain } from "../records.js";
import { clearStatus, field, h, mount, showStatus } from "../dom.js";
import { signIn } from "../session.js";
import { registerForm } from "./register.js";
import { forgetKeys, keptKeyFile, keptLabel } from "../keystore.js";

export function loginView(onSignedIn: () => void): void {
  const file = h("input", { type: "file", accept: ".key,.json,application/json", "aria-describedby": "key-help" });
  const passphrase = h("input", { type: "password", autocomplete: "current-password" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { "aria-labelledby": "login-title" },
    h("h2", { id: "login-title" }, "Sign in with your key file"),
    h("p", { id: "key-help" }, "Your key file is read in this browser only. Keys are kept in memory until you sign out or close the tab."),
    field("Key file", file),
    field("Passphrase (if the file has one)", passphrase),
    submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void (async () => {
      const chosen = file.files?.[0];
      if (chosen === undefined) {
        showStatus("error", "Choose your key file first.");
        file.focus();
        return;
      }
      submit.disabled = true;
      showStatus("info", "Opening the key file…");
      try {
        const text = await chosen.text();
        if (keyFileNeedsPassphrase(text) && passphrase.value === "") {
          showStatus("error", "This key file is protected: enter its passphrase.");
          passphrase.focus();
          return;
        }
        const keys = await loadKeyFile(text, passphrase.value || undefined);
        passphrase.value = "";
        showStatus("info", `Signing in as ${keys.id}…`);
        await signIn(keys);
        clearStatus();
        onSignedIn();
      } catch (error) {
        showStatus("error", error instanceof KeyFileError ? error.message : `Sign-in failed. ${explain(error)}`);
      } finally {
        submit.disabled = false;
      }
    })();
  });
  const kept = h("section", { hidden: true, "aria-labelledby": "kept-title" });
  mount(kept, h("section", {}, form), h("section", {}, registerForm(onSignedIn)));
  void keptLabel().then((label) => {
    if (label === null) return;
    kept.hidden = false;
    kept.replaceChildren(
      h("h2", { id: "kept-title" }, "Keys kept on this device"),
      h("p", {}, `${label}: kept in this browser, encrypted under a key that cannot be exported.`),
      h("button", { type: "button", onclick: () => void (async () => {
        try {
          await signIn(await loadKeyFile(await keptKeyFile()));
          clearStatus();
          onSignedIn();
        } catch (error) {
          showStatus("error", `Sign-in failed. ${explain(error)}`);
        }
      })() }, "Sign in with the kept keys"),
      h("button", { type: "button", class: "secondary", onclick: () => void forgetKeys().then(() => {
        kept.hidden = true;
        showStatus("ok", "The kept keys are deleted from this device.");
      }) }, "Forget them"));
  });
  file.focus();
}
