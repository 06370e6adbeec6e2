// Reads the envelope test vectors from the repository (tests/vectors/envelope/).
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = process.env.EHRGATE_VECTORS ?? join(process.cwd(), "..", "tests", "vectors", "envelope");

export function vector<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(root, name), "utf8")) as T;
}

export function vectorText(name: string): string {
  return readFileSync(join(root, name), "utf8");
}

export function plaintextOf(length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(length));
  for (let i = 0; i < length; i++) out[i] = i % 251;
  return out;
}
