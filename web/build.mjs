// Builds the app into dist/ (index.html, app.js, worker.js, app.css) with esbuild; with --tests, also
// bundles test/*.test.ts into dist-test/ for `node --test`. No network, no CDN.
import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tests = process.argv.includes("--tests");

rmSync(join(here, "dist"), { recursive: true, force: true });
mkdirSync(join(here, "dist"), { recursive: true });
await build({
  entryPoints: [join(here, "src/app/main.ts")],
  outfile: join(here, "dist/app.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});
// the crypto worker: bodies are decrypted and uploads sealed off the page's thread
await build({
  entryPoints: [join(here, "src/worker/main.ts")],
  outfile: join(here, "dist/worker.js"),
  bundle: true,
  format: "iife",
  target: "es2022",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});
for (const file of ["index.html", "app.css"]) cpSync(join(here, "src/app", file), join(here, "dist", file));

if (tests) {
  rmSync(join(here, "dist-test"), { recursive: true, force: true });
  const entries = readdirSync(join(here, "test")).filter((f) => f.endsWith(".test.ts"));
  await build({
    entryPoints: entries.map((f) => join(here, "test", f)),
    outdir: join(here, "dist-test"),
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
  });
}
