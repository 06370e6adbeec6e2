// Drives Debian's Chromium (headless, through playwright-core) for
// tests/web/test_browser_witnesses.py: one page of one browser profile (so localStorage, where
// the witness policy, the witnessed checkpoint and split-view evidence live, persists across
// sign-ins), told what to do one JSON line at a time on stdin, answering one JSON line each.
//   {"do": "policy", "vkeys": [...], "quorum": k, "wait": s}   set it on #/witnesses
//   {"do": "sign_in"}                                          (signs out first if needed)
//   {"do": "open"}       open the patient's first record; the status, checks, alarm, storage
//   {"do": "download", "path": P}    the first evidence's download link, saved to P
//   {"do": "shot", "name": N}        a screenshot of the page to <plan.screenshots>/N.png
//   {"do": "done"}       console errors and CSP violations seen
import { createInterface } from "node:readline";
import { join } from "node:path";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const plan = JSON.parse((await lines.next()).value);
const { chromium } = await import(join(plan.web_dir, "node_modules", "playwright-core", "index.mjs"));
const say = (data) => process.stdout.write(`${JSON.stringify(data)}\n`);

const browser = await chromium.launch({ executablePath: plan.chromium, headless: true, args: ["--no-sandbox"] });
const consoleErrors = [];
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 }, locale: "en-GB", timezoneId: "UTC" });
await context.addInitScript(() => {
  document.addEventListener("securitypolicyviolation", (event) => console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`));
});
const page = await context.newPage();
page.setDefaultTimeout(120000); // the machine may be loaded; a refusal comes long before
let command = "start";
page.on("console", (message) => { if (message.type() === "error") consoleErrors.push({ command, text: message.text() }); });
page.on("pageerror", (error) => consoleErrors.push({ command, text: `page error: ${error.message}` }));

async function storage() {
  return page.evaluate(() => ({
    policy: localStorage.getItem("ehrgate.witness-policy"),
    witnessed: localStorage.getItem("ehrgate.witnessed-checkpoint"),
    evidence: localStorage.getItem("ehrgate.split-view-evidence"),
  }));
}

async function status() {
  return (await page.locator("#status").innerText()).trim();
}

const actions = {
  async policy({ vkeys, quorum, wait }) {
    await page.goto(`${plan.url}/app/#/witnesses`);
    await page.getByLabel("Witness keys (vkeys, one a line, or the SDK's policy.toml)", { exact: true }).fill(vkeys.join("\n"));
    await page.getByLabel("Quorum (k)", { exact: true }).fill(String(quorum));
    await page.getByLabel("Wait for the witnesses (seconds)", { exact: true }).fill(String(wait));
    await page.getByRole("button", { name: "Save the policy", exact: true }).press("Enter");
    await page.locator(".message.ok, .message.error").first().waitFor();
    return { status: await status(), summary: await page.locator("#policy-summary").innerText(), storage: await storage() };
  },
  async sign_in() {
    await page.goto(`${plan.url}/app/`);
    const out = page.getByRole("button", { name: "Sign out", exact: true });
    if (await out.count()) await out.click();
    await page.getByLabel("Key file", { exact: true }).setInputFiles(plan.patient_key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "My records", exact: true }).waitFor();
    return { status: await status() };
  },
  async open() {
    await page.getByRole("button", { name: /^Open the lab-results record/ }).first().press("Enter");
    await page.locator("#status .message.ok, #status .message.error").first().waitFor({ timeout: 120000 });
    const alarm = page.locator("#witness-alarm");
    return {
      status: await status(),
      checks: (await page.locator(".checks").count()) ? await page.locator(".checks").innerText() : null,
      viewer: await page.locator("#viewer-title").count(),
      alarm: (await alarm.count()) ? await alarm.innerText() : null,
      storage: await storage(),
    };
  },
  async download({ path }) {
    await page.goto(`${plan.url}/app/#/witnesses`);
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator(".evidence-download").first().press("Enter")]);
    await download.saveAs(path);
    return { saved: path, evidence_page: await page.locator("#main").innerText() };
  },
  async shot({ name }) {
    await page.screenshot({ path: join(plan.screenshots, `${name}.png`), fullPage: false });
    return {};
  },
  async done() {
    return { console: consoleErrors };
  },
};

try {
  for await (const line of lines) {
    const request = JSON.parse(line);
    command = request.do;
    try {
      say({ did: command, ...(await actions[command](request)) });
    } catch (error) {
      say({ did: command, error: `${String(error?.stack ?? error)}\nstatus: ${await status().catch(() => "?")}`, console: consoleErrors });
    }
    if (command === "done") break;
  }
} finally {
  await browser.close();
}
