// The ehrgate browser app: sign in with a key file, then the view of the signed-in role.
import { whenSignedOut } from "./api.js";
import { h, showStatus } from "./dom.js";
import { signOut, signedIn } from "./session.js";
import { adminView } from "./views/admin.js";
import { clinicianView } from "./views/clinician.js";
import { loginView } from "./views/login.js";
import { patientView } from "./views/patient.js";

function header(): void {
  const who = document.getElementById("who") as HTMLElement;
  const s = signedIn();
  if (s === null) {
    who.replaceChildren("Not signed in");
    return;
  }
  who.replaceChildren(
    `${s.keys.id.length > 20 ? `${s.keys.id.slice(0, 12)}…` : s.keys.id} (${s.role}) `,
    h("button", { type: "button", class: "secondary", onclick: () => { signOut(); start(); } }, "Sign out"));
}

function route(): void {
  header();
  const s = signedIn();
  if (s === null) return loginView(route);
  if (s.role === "patient") return patientView();
  if (s.role === "admin") return adminView();
  return clinicianView();
}

function start(): void {
  route();
}

whenSignedOut((reason) => {
  signOut();
  route();
  showStatus("error", reason);
});

start();
