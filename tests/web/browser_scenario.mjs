// Drives Debian's Chromium (headless, through playwright-core) through the web app for
// tests/web/test_browser.py. Reads the plan as JSON on stdin's first line; prints one JSON
// line per step ({"step": name, ...}) and, where the Python side must act (upload, move
// the gateway clock), waits for a line "go" on stdin. Ends with {"step": "done", requests,
// console}. Every request the pages send is recorded (URL, method, body); every console
// error, page error and CSP violation too, with the step it happened in.
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const plan = JSON.parse((await lines.next()).value);
const { chromium } = await import(join(plan.web_dir, "node_modules", "playwright-core", "index.mjs"));

let step = "start";
const requests = [];
const consoleErrors = [];
const say = (data) => process.stdout.write(`${JSON.stringify({ step, ...data })}\n`);
async function waitForGo() {
  const line = await lines.next();
  if (line.done || line.value.trim() !== "go") throw new Error(`expected go, got ${line.value}`);
}

const browser = await chromium.launch({ executablePath: plan.chromium, headless: true, args: ["--no-sandbox"] });

async function newPage(name) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 }, locale: "en-GB", timezoneId: "UTC" });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return attach(await context.newPage(), name);
}

function attach(page, name) {
  page.on("request", (request) => {
    requests.push({ page: name, step, method: request.method(), url: request.url(), body: request.postData() ?? "" });
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push({ page: name, step, text: message.text() });
  });
  page.on("pageerror", (error) => consoleErrors.push({ page: name, step, text: `page error: ${error.message}` }));
  return page;
}

async function signIn(page, keyFile, passphrase) {
  await page.goto(`${plan.url}/app/`);
  await page.getByLabel("Key file", { exact: true }).setInputFiles(keyFile);
  if (passphrase) await page.getByLabel("Passphrase (if the file has one)", { exact: true }).fill(passphrase);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

// the keyboard, as a person without a mouse would (and untouched by the PDF viewer's focus)
async function press(locator) {
  await locator.focus();
  await locator.press("Enter");
}

async function shot(page, name) {
  await page.screenshot({ path: join(plan.screenshots, `${name}.png`), fullPage: false });
}

async function statusText(page) {
  return (await page.locator("#status").innerText()).trim();
}

try {
  // 1. a patient registers: keys made in the browser, the key file downloaded
  step = "patient-registers";
  const patient = await newPage("patient");
  await patient.goto(`${plan.url}/app/`);
  await patient.getByLabel("Full name", { exact: true }).fill(plan.uii.name);
  await patient.getByLabel("Birth date", { exact: true }).fill(plan.uii.birth_date);
  await patient.getByLabel("Passphrase for the key file (recommended)", { exact: true }).fill(plan.patient_passphrase);
  await shot(patient, "register");
  await press(patient.getByRole("button", { name: "Create my keys and register" }));
  await patient.locator(".message.ok").waitFor({ timeout: 60000 });
  const keyDownloads = [];
  patient.on("download", (download) => keyDownloads.push(download));
  await press(patient.locator("#key-file-link"));
  for (let i = 0; i < 100 && keyDownloads.length === 0; i++) await patient.waitForTimeout(100);
  if (keyDownloads.length === 0) throw new Error("the key file link gave no download");
  await keyDownloads[0].saveAs(plan.patient_key);
  const pseudonym = (await statusText(patient)).match(/[0-9a-f]{64}/)[0];
  say({ pseudonym, status: await statusText(patient) });
  await waitForGo(); // the Python side reads the key file and grants the system its write right

  // 2. the clinician asks for access; the patient approves it into a grant until plan.until
  step = "patient-grants";
  const clinician = await newPage("clinician");
  await signIn(clinician, plan.clinician_key, plan.clinician_passphrase);
  await clinician.getByLabel("Patient pseudonym or link code", { exact: true }).fill(pseudonym);
  await clinician.locator("#request-title").scrollIntoViewIfNeeded();
  await clinician.locator("form[aria-labelledby=request-title]").getByLabel("lab-results", { exact: true }).check();
  await clinician.getByLabel("Why", { exact: true }).fill("follow-up of the March results");
  await press(clinician.getByRole("button", { name: "Request access", exact: true }));
  await clinician.locator(".message.ok", { hasText: "Asked for read access" }).waitFor();
  await press(patient.getByRole("button", { name: "Refresh", exact: true }));
  await press(patient.getByRole("button", { name: `Approve ${plan.clinician_id}'s request: fill in the grant` }));
  const prefilled = {
    grantee: await patient.getByLabel("Who (identity id, e.g. dr-house)", { exact: true }).inputValue(),
    lab: await patient.getByLabel("lab-results", { exact: true }).isChecked(),
    others: await patient.getByLabel("radiation-dose", { exact: true }).isChecked(),
    requests: await patient.locator("#requests").innerText(),
  };
  await patient.getByLabel("From", { exact: true }).fill(plan.from);
  await patient.getByLabel("Until (not included)", { exact: true }).fill(plan.until);
  await press(patient.getByRole("button", { name: "Grant", exact: true }));
  await patient.locator(".message.ok", { hasText: "Granted" }).waitFor();
  const grantedStatus = await statusText(patient);
  // a second request, declined: the answer is signed in the browser and goes on the ledger
  await clinician.locator("form[aria-labelledby=request-title]").getByLabel("radiation-dose", { exact: true }).check();
  await clinician.locator("form[aria-labelledby=request-title]").getByLabel("lab-results", { exact: true }).uncheck();
  await clinician.getByLabel("Why", { exact: true }).fill("curious about the dose");
  await press(clinician.getByRole("button", { name: "Request access", exact: true }));
  await clinician.locator(".message.ok", { hasText: "Asked for read access" }).waitFor();
  await press(patient.getByRole("button", { name: "Refresh", exact: true }));
  await press(patient.getByRole("button", { name: `Decline ${plan.clinician_id}'s request` }));
  await patient.locator(".message.ok", { hasText: "Declined" }).waitFor();
  const declined = await statusText(patient);
  await patient.locator("#requests", { hasText: "No open requests." }).waitFor();
  say({ status: grantedStatus, prefilled, declined });
  await waitForGo(); // the system uploads through the SDK

  // 3. the clinician opens the PDF: streamed, decrypted, checked, shown
  step = "clinician-opens";
  // the patient's link code: a typo in it is caught; the link itself opens the patient
  const code = (await patient.locator("#link-code").innerText()).trim();
  const link = (await patient.locator("#link-url").innerText()).trim();
  const typo = code.slice(0, 10) + (code[10] === "q" ? "p" : "q") + code.slice(11);
  await clinician.getByLabel("Patient pseudonym or link code", { exact: true }).fill(typo);
  await press(clinician.getByRole("button", { name: "Show records" }));
  await clinician.locator("#status .message.error").waitFor();
  const typoStatus = await statusText(clinician);
  await clinician.evaluate((hash) => { location.hash = hash; }, link.slice(link.indexOf("#")));
  await clinician.locator(".message.info", { hasText: "record(s) you may see" }).waitFor();
  const byLink = { status: await statusText(clinician), field: await clinician.getByLabel("Patient pseudonym or link code", { exact: true }).inputValue() };
  await press(clinician.getByRole("button", { name: /^Open the lab-results record/ }));
  await clinician.locator(".message.ok").waitFor({ timeout: 60000 });
  const openProgress = await clinician.locator("#open-progress").evaluate((bar) => ({ value: bar.value, max: bar.max, hidden: bar.parentElement.hidden }));
  openProgress.words = await clinician.locator(".progress-words").first().innerText();
  const downloads = [];
  clinician.on("download", (download) => downloads.push(download));
  await press(clinician.locator("#download-link"));
  for (let i = 0; i < 100 && downloads.length === 0; i++) await clinician.waitForTimeout(100);
  if (downloads.length === 0) throw new Error("the download link gave no download");
  const bytes = readFileSync(await downloads[downloads.length - 1].path());
  const opened = {
    status: await statusText(clinician), downloaded_hex: bytes.toString("hex"), checks: await clinician.locator(".checks").innerText(),
    code, link, typo, typo_status: typoStatus, by_link: byLink, open_progress: openProgress,
  };
  // the shot shows the progress bar at the whole body, the checks that passed and the PDF
  await clinician.locator("#open-progress").evaluate((bar) => bar.scrollIntoView({ block: "start" }));
  await shot(clinician, "clinician");
  // the clinician's own upload (write right on treatment-summary), sealed in the browser
  await clinician.getByLabel("Document", { exact: true }).setInputFiles(plan.upload_pdf);
  await clinician.getByLabel("Category", { exact: true }).selectOption("treatment-summary");
  await press(clinician.getByRole("button", { name: "Seal and upload", exact: true }));
  await clinician.locator(".message", { hasText: /^(Uploaded|Not uploaded)/ }).waitFor({ timeout: 60000 });
  const uploaded = await statusText(clinician);
  const uploadProgress = await clinician.locator("#upload-progress").evaluate((bar) => ({ value: bar.value, max: bar.max, hidden: bar.parentElement.hidden }));
  uploadProgress.words = await clinician.locator("#upload-progress + .progress-words").innerText();
  // a patient who published no keys: the upload is refused with the gateway's message
  await clinician.getByLabel("Patient pseudonym or link code", { exact: true }).fill(plan.unpublished_pseudonym);
  await press(clinician.getByRole("button", { name: "Show records" }));
  await clinician.locator(".message.info", { hasText: "record(s) you may see" }).waitFor();
  await clinician.getByLabel("Document", { exact: true }).setInputFiles(plan.upload_pdf);
  await clinician.getByLabel("Category", { exact: true }).selectOption("treatment-summary");
  await press(clinician.getByRole("button", { name: "Seal and upload", exact: true }));
  await clinician.locator(".message", { hasText: /^(Uploaded|Not uploaded)/ }).waitFor({ timeout: 60000 });
  const unpublished = await statusText(clinician);
  await clinician.getByLabel("Patient pseudonym or link code", { exact: true }).fill(pseudonym);
  await press(clinician.getByRole("button", { name: "Show records" }));
  await clinician.locator(".message.info", { hasText: "record(s) you may see" }).waitFor();
  say({ ...opened, uploaded, upload_progress: uploadProgress, unpublished });
  await waitForGo(); // the gateway's clock passes the grant's end

  // 4. the next open is refused, with the gateway's reason
  step = "clinician-refused";
  await press(clinician.getByRole("button", { name: /^Open the lab-results record/ }));
  await clinician.locator("#status .message.error").waitFor();
  say({ status: await statusText(clinician) });
  await shot(clinician, "clinician-refused");

  // 5. the patient's audit shows the allowed read and the denial
  step = "patient-audit";
  await patient.getByRole("button", { name: "Refresh" }).click();
  await patient.locator("#audit .denied").first().waitFor();
  const audited = { audit: await patient.locator("#audit").innerText(), grants: await patient.locator("#grants").innerText() };
  await shot(patient, "patient");
  // keys kept on the device (IndexedDB, under a non-extractable key): a new tab signs in with
  // them; kept before a PDF is shown on this page: with the PDF viewer loading on it, the
  // page was found back at sign-in after this Enter in two runs of about twenty
  await press(patient.getByRole("button", { name: "Keep my keys on this device", exact: true }));
  await patient.locator(".message.ok", { hasText: "Your keys are kept" }).waitFor();
  // the patient opens, with month keys derived from K, what the clinician sealed in the browser
  await press(patient.getByRole("button", { name: /^Open the treatment-summary record/ }));
  await patient.locator(".message.ok", { hasText: "Verified and opened" }).waitFor({ timeout: 60000 });
  audited.patient_opened = await statusText(patient);
  const again = attach(await patient.context().newPage(), "patient-again");
  await again.goto(`${plan.url}/app/`);
  await press(again.getByRole("button", { name: "Sign in with the kept keys", exact: true }));
  await again.getByRole("heading", { name: "My records", exact: true }).waitFor();
  await press(again.getByRole("button", { name: "Publish keys again", exact: true }));
  await again.locator(".message.ok", { hasText: "keys through" }).waitFor({ timeout: 60000 });
  audited.republished = await statusText(again);
  audited.keys_status = await again.locator("#keys-status").innerText();
  say({ ...audited, kept_sign_in: await again.locator("#main").innerText() });

  // a patient who published only some months publishes the rest
  step = "patient-publishes";
  const late = await newPage("late-patient");
  await signIn(late, plan.late_patient_key);
  await late.locator("#keys-status table").waitFor();
  const before = await late.locator("#keys-status").innerText();
  await late.locator("#keys-title").scrollIntoViewIfNeeded();
  await shot(late, "patient-keys");
  await press(late.getByRole("button", { name: "Publish keys again", exact: true }));
  await late.locator(".message", { hasText: /keys (through|were not published)/ }).waitFor({ timeout: 60000 });
  say({ before, status: await statusText(late), after: await late.locator("#keys-status").innerText() });

  // 6. an admin enrolls an auditor and suspends the clinician
  step = "admin";
  const admin = await newPage("admin");
  await signIn(admin, plan.admin_key);
  await admin.getByLabel("Public key file (paste)", { exact: true }).fill(plan.enroll_public);
  await press(admin.getByRole("button", { name: "Enroll", exact: true }));
  await admin.locator(".message.ok", { hasText: "Enrolled" }).waitFor();
  const enrolled = await statusText(admin);
  await admin.getByLabel("Identity id", { exact: true }).fill(plan.clinician_id);
  await admin.getByLabel("Reason", { exact: true }).fill("left the hospital");
  await press(admin.getByRole("button", { name: "Suspend", exact: true }));
  await admin.locator(".message.ok", { hasText: "Suspended" }).waitFor();
  await admin.getByText("suspended: left the hospital").waitFor();
  const suspended = await statusText(admin);
  await press(admin.getByRole("button", { name: "Verify now", exact: true }));
  await admin.locator(".message", { hasText: "Ledger" }).waitFor();
  say({ enrolled, suspended, verified: await statusText(admin), identities: await admin.locator("#identities").innerText(), head: await admin.locator("#ledger-head").innerText() });
  await shot(admin, "admin");

  // 7. the suspended clinician is shown out
  step = "clinician-shown-out";
  await clinician.getByRole("button", { name: "Show records" }).click();
  await clinician.getByRole("button", { name: "Sign in" }).waitFor();
  say({ status: await statusText(clinician) });
  await shot(clinician, "signed-out");

  step = "login";
  const fresh = await newPage("login");
  await fresh.goto(`${plan.url}/app/`);
  await fresh.getByRole("button", { name: "Sign in" }).waitFor();
  await shot(fresh, "login");
  await fresh.setViewportSize({ width: 390, height: 800 });
  await shot(fresh, "login-phone");
  step = "done";
  say({ requests, console: consoleErrors });
} catch (error) {
  const pages = browser.contexts().flatMap((context) => context.pages());
  const statuses = await Promise.all(pages.map(async (page) => {
    const status = await page.locator("#status").innerText({ timeout: 2000 }).catch(() => "?");
    const main = await page.locator("#main").innerText({ timeout: 2000 }).catch(() => "?");
    return `${page.url()} [${status}] ${main.slice(0, 200).replace(/\s+/g, " ")}`;
  }));
  say({ error: `${String(error?.stack ?? error)}\nstatus lines: ${JSON.stringify(statuses)}`, requests, console: consoleErrors });
  process.exitCode = 1;
} finally {
  await browser.close();
}
