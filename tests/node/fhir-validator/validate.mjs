// Validates FHIR R4 resources, one JSON document per line on stdin, with FHIR.js (offline:
// the package ships the R4 structure definitions). Prints one JSON line per input:
// {"valid": bool, "messages": [{"severity", "location", "message"}]}.
import { createInterface } from "node:readline";
import { Fhir } from "fhir";

const fhir = new Fhir();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let result;
  try {
    result = fhir.validate(JSON.parse(line), { errorOnUnexpected: true });
  } catch (error) {
    result = { valid: false, messages: [{ severity: "error", location: "", message: String(error) }] };
  }
  const messages = (result.messages || []).map((m) => ({
    severity: m.severity,
    location: m.location,
    message: m.message,
  }));
  process.stdout.write(JSON.stringify({ valid: result.valid, messages }) + "\n");
}
