// The browser side of bench/web_open.py: Debian's Chromium (headless, playwright-core from
// web/node_modules) signs in to the web app with a key file and opens one record when told.
// Reads the plan (JSON) on stdin's first line, then one line per round: "open" opens the
// record and prints {"ms": ..., "longest_task_ms": ...}; "quit" ends. Times are taken in
// the page (performance.now()) from the press of Open until the app shows the document
// verified; the longest task the page's thread ran in that time is reported too.
import { createInterface } from "node:readline";
import { join } from "node:path";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const plan = JSON.parse((await lines.next()).value);
const { chromium } = await import(join(plan.web_dir, "node_modules", "playwright-core", "index.mjs"));
const browser = await chromium.launch({ executablePath: plan.chromium, headless: true, args: ["--no-sandbox"] });
const say = (data) => process.stdout.write(`${JSON.stringify(data)}\n`);

try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${plan.url}/app/#/patient/${plan.pseudonym}`);
  await page.getByLabel("Key file", { exact: true }).setInputFiles(plan.key_file);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: /^Open the .* record/ }).first().waitFor({ timeout: 60000 });
  say({ ready: true });
  for (;;) {
    const line = await lines.next();
    if (line.done || line.value.trim() !== "open") break;
    const result = await page.evaluate(async () => {
      const status = document.getElementById("status");
      const button = document.querySelector("button[data-record]");
      let longest = 0;
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) longest = Math.max(longest, entry.duration);
      });
      observer.observe({ type: "longtask" });
      status.replaceChildren();
      const shown = new Promise((resolve) => {
        const watch = new MutationObserver(() => {
          const message = status.querySelector(".message.ok, .message.error");
          if (message !== null) {
            watch.disconnect();
            resolve(message);
          }
        });
        watch.observe(status, { childList: true, subtree: true });
      });
      const started = performance.now();
      button.click();
      const message = await shown;
      const ms = performance.now() - started;
      // tasks still queued in the observer arrive after a frame
      await new Promise((resolve) => setTimeout(resolve, 50));
      observer.disconnect();
      return { ms, longest_task_ms: longest, ok: message.classList.contains("ok"), text: message.textContent };
    });
    if (!result.ok) throw new Error(`the record did not open: ${result.text}`);
    say(result);
  }
  if (errors.length > 0) throw new Error(`console errors: ${JSON.stringify(errors)}`);
} catch (error) {
  say({ error: String(error?.stack ?? error) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
