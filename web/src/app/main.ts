// The ehrgate browser app: sign in with a key file, then the view of the signed-in role.
import { whenSignedOut } from "./api.js";
import { h, showStatus } from "./dom.js";
import { signOut, signedIn } from "./session.js";
import { keepKeys } from "./keystore.js";
import { encodeKeyFile } from "../crypto/index.js";
import { adminView } from "./views/admin.js";
import { clinicianView } from "./views/clinician.js";
import { loginView } from "./views/login.js";
import { patientView } from "./views/patient.js";
import { showSplitViewAlarm, witnessesView } from "./views/witnesses.js";
import { whenSplitView } from "./witness/witnessed.js";

function header(): void {
  const who = document.getElementById("who") as HTMLElement;
  const s = signedIn();
  const witnesses = h("a", { href: "#/witnesses", class: "bar-link" }, "Witnesses");
  if (s === null) {
    who.replaceChildren("Not signed in ", witnesses);
    return;
  }
  who.replaceChildren(witnesses, " ",
    `${s.keys.id.length > 20 ? `${s.keys.id.slice(0, 12)}…` : s.keys.id} (${s.role}) `,
    h("button", { type: "button", class: "secondary", onclick: () => void keep() }, "Keep my keys on this device"),
    h("button", { type: "button", class: "secondary", onclick: () => { signOut(); start(); } }, "Sign out"));
}

async function keep(): Promise<void> {
  const s = signedIn();
  if (s === null) return;
  try {
    await keepKeys(await encodeKeyFile(s.keys), `${s.keys.id} (${s.role})`);
    showStatus("ok", "Your keys are kept on this device, encrypted under a key that cannot be exported; sign out and \"Forget them\" to delete them.");
  } catch (error) {
    showStatus("error", `The keys could not be kept: ${String(error)}`);
  }
}

/** The patient a link names (#/patient/<link code or pseudonym>): the fragment never leaves the browser. */
function linkedPatient(): string | null {
  const found = /^#\/patient\/([^/?#]+)$/.exec(location.hash);
  return found === null ? null : decodeURIComponent(found[1] as string);
}

function route(): void {
  header();
  showSplitViewAlarm();
  if (location.hash === "#/witnesses") {
    witnessesView(() => { location.hash = ""; });
    return;
  }
  const s = signedIn();
  if (s === null) {
    loginView(route);
    if (linkedPatient() !== null) showStatus("info", "Sign in to open the patient this link names.");
    return;
  }
  if (s.role === "patient") return patientView();
  if (s.role === "admin") return adminView();
  return clinicianView(linkedPatient());
}

function start(): void {
  route();
}

whenSignedOut((reason) => {
  signOut();
  route();
  showStatus("error", reason);
});

whenSplitView(() => showSplitViewAlarm());

let lastHash = location.hash;
window.addEventListener("hashchange", () => {
  const leftSettings = lastHash === "#/witnesses";
  lastHash = location.hash;
  if (location.hash === "#/witnesses" || leftSettings || (signedIn() !== null && linkedPatient() !== null)) route();
});

start();
