// The app's crypto worker jobs (worker/jobs.ts) and link codes (crypto/linkcode.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as c from "../src/crypto/index.js";
import { Jobs } from "../src/worker/jobs.js";
import type { FromWorker } from "../src/worker/protocol.js";
import { plaintextOf, vector } from "./vectors.js";

function worker(): { jobs: Jobs; said: FromWorker[]; answer: (job: number) => Promise<FromWorker> } {
  const said: FromWorker[] = [];
  const jobs = new Jobs((message) => said.push(message));
  const answer = async (job: number): Promise<FromWorker> => {
    for (let i = 0; i < 2000; i++) {
      const found = said.find((m) => m.job === job && !("progress" in m));
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    throw new Error("the worker gave no answer");
  };
  return { jobs, said, answer };
}

describe("crypto worker jobs", () => {
  const big = vector("body.json").cases.at(-1);
  const dek = c.fromHex(big.dek);
  const expected = { body_sha256: big.body_sha256, body_size: big.body_size, plaintext_sha256: big.plaintext_sha256, plaintext_size: big.plaintext_length };
  const body = () => c.sealBody(dek, c.fromHex(big.salt), new Uint8Array(plaintextOf(big.plaintext_length))).then((s) => s.body);

  it("opens a body handed over in pieces, with progress up to the whole body", async () => {
    const { jobs, said, answer } = worker();
    jobs.handle({ op: "open", job: 1, dataKey: dek, expected });
    const sealed = await body();
    for (let at = 0; at < sealed.length; at += 50000) jobs.handle({ op: "chunk", job: 1, chunk: sealed.slice(at, at + 50000) });
    jobs.handle({ op: "end", job: 1 });
    const done = await answer(1);
    assert.ok("opened" in done);
    const plain = new Uint8Array(await done.opened.arrayBuffer());
    assert.equal(c.toHex(c.sha256(plain)), big.plaintext_sha256);
    const progress = said.filter((m) => "progress" in m).map((m) => ("progress" in m ? m.progress : 0));
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
    assert.equal(progress.at(-1), big.body_size);
  });

  it("refuses a tampered body with a crypto error, and hands out no plaintext", async () => {
    const { jobs, said, answer } = worker();
    jobs.handle({ op: "open", job: 7, dataKey: dek, expected });
    const sealed = (await body()).slice();
    sealed[29 + 65552 + 3]! ^= 1;
    for (let at = 0; at < sealed.length; at += 65552) jobs.handle({ op: "chunk", job: 7, chunk: sealed.slice(at, at + 65552) });
    jobs.handle({ op: "end", job: 7 });
    const done = await answer(7);
    assert.ok("error" in done && done.refusal === "crypto", JSON.stringify(done));
    assert.ok(!said.some((m) => "opened" in m));
  });

  it("refuses sizes that do not fit together at once", async () => {
    const { jobs, answer } = worker();
    jobs.handle({ op: "open", job: 2, dataKey: dek, expected: { ...expected, plaintext_size: 5 } });
    const done = await answer(2);
    assert.ok("error" in done && done.refusal === "crypto");
  });

  it("seals a file to the same body sealBody makes, with progress up to its size", async () => {
    const { jobs, said, answer } = worker();
    const plain = new Uint8Array(plaintextOf(big.plaintext_length));
    jobs.handle({ op: "seal", job: 3, file: new Blob([plain]), dataKey: dek, salt: c.fromHex(big.salt) });
    const done = await answer(3);
    assert.ok("sealed" in done);
    assert.equal(done.sealed.bodySha256, big.body_sha256);
    assert.equal(done.sealed.plaintextSha256, big.plaintext_sha256);
    assert.equal(done.sealed.plaintextSize, big.plaintext_length);
    assert.equal(c.toHex(c.sha256(done.sealed.body)), big.body_sha256);
    const last = said.filter((m) => "progress" in m).at(-1);
    assert.ok(last !== undefined && "progress" in last && last.progress === big.plaintext_length);
  });
});

describe("capsules opened in the crypto worker", () => {
  const v = vector("scoped_key.json");
  const cap = v.capsule;
  const capsule = c.utf8(cap.capsule);
  const K = c.fromHex(v.keys[0].patient_key);
  const s = v.share;
  const granteeKey = c.xwingPrivateKey(c.fromBase64(s.grantee_private_key));
  const scoped = { kind: "scoped-v2" as const, sealed: c.fromBase64(s.share), pseudonym: s.pseudonym, granteeId: s.grantee_id, granteeKey };
  const scope = s.scope.map(([category, period]: [string, string]) => `${category}/${period}`);
  const open = async (reader: c.ReaderKeys) => {
    const { jobs, answer } = worker();
    // as the page hands it over: a structured clone of plain data
    jobs.handle(structuredClone({ op: "capsule" as const, job: 5, capsule, recipientId: cap.pseudonym, reader }));
    return answer(5);
  };

  it("opens with K and with the key share, to the same data key and metadata", async () => {
    const withK = await open({ kind: "patient", patientKey: K, version: 2 });
    const withShare = await open({ ...scoped, scope });
    assert.ok("capsule" in withK && "capsule" in withShare, JSON.stringify([withK, withShare]));
    assert.equal(c.toHex(withK.capsule.dataKey), c.toHex(withShare.capsule.dataKey));
    assert.equal(withShare.capsule.metadata.category, cap.category);
    assert.equal(withShare.capsule.metadata.created_at, cap.created_at);
  });

  it("refuses a share that carries other keys than its ledger entry states", async () => {
    for (const claimed of [scope.slice(1), [...scope, "lab-results/2030-01"], scope.map((i: string) => i.replace("lab-results", "radiation-dose"))]) {
      const done = await open({ ...scoped, scope: claimed });
      assert.ok("error" in done && done.refusal === "share-mismatch", JSON.stringify(done));
    }
  });

  it("says which key was not shared", async () => {
    const january = await c.sealScopedShare(K, s.pseudonym, s.grantee_id, granteeKey.publicKey, [["lab-results", "2026-01"]]);
    assert.notEqual(c.capsuleKeyId(capsule, cap.pseudonym), "scoped-v2/lab-results/2026-01");
    const done = await open({ ...scoped, sealed: january, scope: ["lab-results/2026-01"] });
    assert.ok("error" in done && done.refusal === "key-not-held", JSON.stringify(done));
    assert.match(done.error, /was not shared with you/);
  });

  it("refuses another grantee's or patient's share, and a changed capsule", async () => {
    const other = c.xwingPrivateKey(new Uint8Array(32).fill(9));
    const wrongKey = await open({ ...scoped, scope, granteeKey: other });
    assert.ok("error" in wrongKey && wrongKey.refusal === "crypto", JSON.stringify(wrongKey));
    const wrongId = await open({ ...scoped, scope, granteeId: "dr-who" });
    assert.ok("error" in wrongId && wrongId.refusal === "crypto");
    // a reader whose K is another patient's: the capsule does not open
    const otherK = await open({ kind: "patient", patientKey: new Uint8Array(32).fill(3), version: 2 });
    assert.ok("error" in otherK && otherK.refusal === "crypto");
    const changed = capsule.slice();
    changed[changed.length - 40]! ^= 1;
    const { jobs, answer } = worker();
    jobs.handle({ op: "capsule", job: 6, capsule: changed, recipientId: cap.pseudonym, reader: { kind: "patient", patientKey: K, version: 2 } });
    const tampered = await answer(6);
    assert.ok("error" in tampered && tampered.refusal === "crypto");
  });
});

describe("link codes", () => {
  const pseudonyms = [
    "00".repeat(32), "ff".repeat(32),
    ...Array.from({ length: 6 }, (_, i) => c.toHex(c.sha256(c.utf8(`patient ${i}`)))),
  ];
  const ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
  const bare = (code: string) => code.replace(/-/g, "");

  it("carry the pseudonym and read back ignoring case, spaces and dashes", () => {
    for (const p of pseudonyms) {
      const code = c.linkCode(p);
      assert.equal(bare(code).length, 58);
      assert.match(code, /^([a-z0-9]{4}-){14}[a-z0-9]{2}$/);
      assert.equal(c.pseudonymFromLinkCode(code), p);
      assert.equal(c.pseudonymFromLinkCode(` ${code.toUpperCase().replace(/-/g, " ")} `), p);
      assert.equal(c.pseudonymFromLinkCode(bare(code)), p);
    }
    assert.equal(c.linkCodeUrl("http://127.0.0.1:8000/app/", pseudonyms[2]!), `http://127.0.0.1:8000/app/#/patient/${c.linkCode(pseudonyms[2]!)}`);
  });

  it("detect every changed character and every swap of two neighbours", () => {
    for (const p of pseudonyms) {
      const code = bare(c.linkCode(p));
      for (let i = 0; i < code.length; i++) {
        for (const other of ALPHABET) {
          if (other === code[i]) continue;
          const typo = code.slice(0, i) + other + code.slice(i + 1);
          assert.throws(() => c.pseudonymFromLinkCode(typo), /typo/, typo);
        }
        if (i + 1 < code.length && code[i] !== code[i + 1]) {
          const swapped = code.slice(0, i) + code[i + 1] + code[i] + code.slice(i + 2);
          assert.throws(() => c.pseudonymFromLinkCode(swapped), /typo/, swapped);
        }
      }
    }
  });

  it("detect two to four changed characters anywhere (a thousand random cases each)", () => {
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const code = bare(c.linkCode(pseudonyms[3]!));
    for (let errors = 2; errors <= 4; errors++) {
      for (let round = 0; round < 1000; round++) {
        const chars = [...code];
        const places = new Set<number>();
        while (places.size < errors) places.add(random(chars.length));
        for (const at of places) chars[at] = ALPHABET[(ALPHABET.indexOf(chars[at]!) + 1 + random(31)) % 32]!;
        assert.throws(() => c.pseudonymFromLinkCode(chars.join("")), c.CryptoError);
      }
    }
  });

  it("refuse a missing or extra character, letters not in the alphabet, and a bad pseudonym", () => {
    const code = bare(c.linkCode(pseudonyms[4]!));
    assert.throws(() => c.pseudonymFromLinkCode(code.slice(1)), /has 58 characters; this one has 57/);
    assert.throws(() => c.pseudonymFromLinkCode(`${code}q`), /this one has 59/);
    assert.throws(() => c.pseudonymFromLinkCode(`b${code.slice(1)}`), /"b" does not occur/);
    assert.throws(() => c.pseudonymFromLinkCode(`o${code.slice(1)}`), /"o" does not occur/);
    assert.throws(() => c.linkCode("ab".repeat(31)), c.CryptoError);
  });
});
