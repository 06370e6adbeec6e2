// Signed notes, checkpoints, cosignatures and the witness policy, held to the vectors the
// Python implementation (ledger.wire) made: tests/vectors/notes/notes.json (every case's
// outcome is ledger.wire's), and fuzzed notes (random bytes, every single-byte change).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import * as n from "../src/crypto/checkpoint.js";
import { concat, fromBase64, fromHex, toBase64, toHex, utf8 } from "../src/crypto/index.js";
import { PolicyError, WitnessPolicy, parsePolicyText } from "../src/app/witness/policy.js";

const envelope = process.env.EHRGATE_VECTORS ?? join(process.cwd(), "..", "tests", "vectors", "envelope");
const vectors = JSON.parse(readFileSync(join(envelope, "..", "notes", "notes.json"), "utf8"));

function verifiersOf(list: Array<{ kind: string; vkey: string }>): n.Verifiers {
  return new n.Verifiers(list.map((v) => n.NoteVerifier.fromVkey(v.vkey, v.kind === "ed25519" ? n.ALG_ED25519 : n.ALG_COSIGNATURE_V1)));
}

function outcome(note: Uint8Array, verifiers: n.Verifiers): Record<string, unknown> {
  try {
    const opened = n.openNote(note, verifiers);
    return { expect: "ok", text: opened.text, verified: opened.verified.map((s) => s.name), unverified: opened.unverified.length };
  } catch (error) {
    if (error instanceof n.MalformedNote) return { expect: "malformed" };
    if (error instanceof n.InvalidNoteSignature) return { expect: "invalid" };
    if (error instanceof n.UntrustedNote) return { expect: "untrusted" };
    throw error;
  }
}

describe("signed notes: the same outcome as ledger.wire for every vector", () => {
  assert.ok(vectors.notes.length > 120);
  for (const v of vectors.notes) {
    it(v.name, () => {
      const { name: _name, note_b64: noteB64, verifiers, ...expected } = v;
      assert.deepEqual(outcome(fromBase64(noteB64), verifiersOf(verifiers)), expected);
    });
  }
});

describe("checkpoints: parsed and written byte for byte as ledger.wire", () => {
  for (const v of vectors.checkpoints) {
    it(JSON.stringify(v.text).slice(0, 90), () => {
      if (v.expect === "malformed") {
        assert.throws(() => n.parseCheckpoint(v.text), n.MalformedNote);
        return;
      }
      const cp = n.parseCheckpoint(v.text);
      assert.deepEqual([cp.origin, cp.size.toString(), toHex(cp.root), cp.extensions], [v.origin, v.size, v.root_hex, v.extensions]);
      assert.equal(n.checkpointText(cp), v.formatted);
      assert.equal(n.checkpointText(cp), v.text);
    });
  }
});

describe("vkeys: read as ledger.wire reads them", () => {
  for (const v of vectors.vkeys) {
    it(`${v.kind} ${JSON.stringify(v.vkey)}`, () => {
      const alg = v.kind === "ed25519" ? n.ALG_ED25519 : n.ALG_COSIGNATURE_V1;
      if (v.expect === "malformed") {
        assert.throws(() => n.NoteVerifier.fromVkey(v.vkey, alg), n.MalformedNote);
        return;
      }
      const verifier = n.NoteVerifier.fromVkey(v.vkey, alg);
      assert.deepEqual([verifier.name, toHex(verifier.keyId), verifier.vkey()], [v.name, v.key_id, v.formatted]);
    });
  }
});

describe("cosignatures", () => {
  const fixed = vectors.cosigned_checkpoint;
  const log = n.NoteVerifier.fromVkey(fixed.log_vkey, n.ALG_ED25519);
  const witnesses = new n.Verifiers(fixed.witness_vkeys.map((v: string) => n.NoteVerifier.fromVkey(v, n.ALG_COSIGNATURE_V1)));
  const note = utf8(fixed.note);

  it("a cosigned checkpoint opens with the log's key and names its cosigners", () => {
    const { checkpoint } = n.openCheckpoint(note, new n.Verifiers([log]));
    assert.equal(checkpoint.size, 12n);
    assert.deepEqual(n.cosigners(note, witnesses), fixed.cosigned_by);
  });

  it("the signed message is cosignature/v1, the time line and the note text", () => {
    const parsed = n.parseNote(note);
    const first = parsed.signatures[1] as n.NoteSignature;
    assert.equal(n.cosignatureTime(first), BigInt(fixed.times[0]));
    assert.equal(toBase64(n.cosignedMessage(utf8(parsed.text), BigInt(fixed.times[0]))), fixed.cosigned_message_of_first);
    const witness = n.NoteVerifier.fromVkey(fixed.witness_vkeys[0], n.ALG_COSIGNATURE_V1);
    assert.ok(ed25519.verify(first.signature.subarray(8), fromBase64(fixed.cosigned_message_of_first), witness.publicKey));
  });

  it("the key ID is SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4]", () => {
    const peter = n.NoteVerifier.fromVkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", n.ALG_ED25519);
    assert.equal(toHex(n.keyId("PeterNeumann", n.ALG_ED25519, peter.publicKey)), "c74f20a3");
    const witness = n.NoteVerifier.fromVkey(fixed.witness_vkeys[0], n.ALG_COSIGNATURE_V1);
    assert.notEqual(toHex(n.keyId(witness.name, n.ALG_ED25519, witness.publicKey)), toHex(witness.keyId));
  });

  it("fewer than the quorum of cosigners when the trusted witnesses did not all sign", () => {
    const two = new n.Verifiers(fixed.witness_vkeys.slice(2).map((v: string) => n.NoteVerifier.fromVkey(v, n.ALG_COSIGNATURE_V1)));
    assert.deepEqual(n.cosigners(note, two), [fixed.cosigned_by[2]]);
    assert.deepEqual(n.cosigners(note, new n.Verifiers([])), []);
  });
});

describe("fuzzed notes", () => {
  const fixed = vectors.cosigned_checkpoint;
  const trusted = new n.Verifiers([
    n.NoteVerifier.fromVkey(fixed.log_vkey, n.ALG_ED25519),
    ...fixed.witness_vkeys.map((v: string) => n.NoteVerifier.fromVkey(v, n.ALG_COSIGNATURE_V1)),
  ]);
  const note = utf8(fixed.note);
  const original = n.parseNote(note);
  const lines = new Set(original.signatures.map((s) => `${s.name} ${toHex(s.keyId)} ${toHex(s.signature)}`));

  it("every single-byte change is refused or leaves only original signatures verified", () => {
    let refused = 0;
    for (let i = 0; i < note.length; i++) {
      for (const value of [note[i]! ^ 1, note[i]! ^ 0x80, 0x0a, 0x20, 0x2b, 0x3d]) {
        if (value === note[i]) continue;
        const changed = note.slice();
        changed[i] = value;
        try {
          const opened = n.openNote(changed, trusted);
          assert.equal(opened.text, original.text, `byte ${i}`);
          for (const s of opened.verified) assert.ok(lines.has(`${s.name} ${toHex(s.keyId)} ${toHex(s.signature)}`), `byte ${i}`);
        } catch (error) {
          assert.ok(error instanceof n.NoteError, `byte ${i}: ${String(error)}`);
          refused += 1;
        }
      }
    }
    assert.ok(refused > note.length * 4);
  });

  it("random bytes and random texts never open and never throw anything but NoteError", () => {
    let seed = 17;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let round = 0; round < 3000; round++) {
      const length = random() + (round % 3) * 60;
      const bytes = Uint8Array.from({ length }, () => (round % 2 === 0 ? random() : "ab—\n +=/0"[random() % 10]!.charCodeAt(0) & 0xff));
      const data = round % 5 === 0 ? concat(bytes, utf8("\n\n— x AAAAAAA=\n")) : bytes;
      assert.throws(() => n.openNote(data, trusted), n.NoteError);
    }
  });

  it("a checkpoint with a known key's bad signature is refused, whoever else signed", () => {
    const parsed = n.parseNote(note);
    const sig = parsed.signatures[0] as n.NoteSignature;
    const bad = `\u2014 ${sig.name} ${toBase64(concat(sig.keyId, fromHex("00".repeat(64))))}\n`;
    assert.throws(() => n.openNote(concat(note, utf8(bad)), trusted), n.InvalidNoteSignature);
  });
});

describe("the witness policy (ehrgate/witness_policy.py's rules)", () => {
  const vkeys: string[] = vectors.cosigned_checkpoint.witness_vkeys;

  it("k of n with 2k − n ≥ 1", () => {
    assert.equal(WitnessPolicy.of({ quorum: 3, witnesses: vkeys, wait_seconds: 10 }).quorum, 3);
    assert.equal(WitnessPolicy.of({ quorum: 2, witnesses: vkeys.slice(0, 3), wait_seconds: 0 }).names.length, 3);
    for (const [quorum, count] of [[2, 4], [1, 2], [0, 1], [5, 4], [1.5, 2]] as const) {
      assert.throws(() => WitnessPolicy.of({ quorum, witnesses: vkeys.slice(0, count), wait_seconds: 10 }), PolicyError);
    }
    assert.throws(() => WitnessPolicy.of({ quorum: 1, witnesses: [], wait_seconds: 10 }), PolicyError);
    assert.throws(() => WitnessPolicy.of({ quorum: 2, witnesses: [vkeys[0]!, vkeys[0]!, vkeys[1]!], wait_seconds: 10 }), PolicyError);
    assert.throws(() => WitnessPolicy.of({ quorum: 1, witnesses: vkeys.slice(0, 1), wait_seconds: 3601 }), PolicyError);
  });

  it("only cosignature (0x04) vkeys are witness keys", () => {
    assert.throws(() => WitnessPolicy.of({ quorum: 1, witnesses: [vectors.cosigned_checkpoint.log_vkey], wait_seconds: 1 }), /signature type 0x01/);
  });

  it("the SDK's policy.toml is read as the SDK reads it", () => {
    const toml = `# policy.toml\n[witnesses]\nquorum = 3                  # k\nwait_seconds = 2.5\nevidence_dir = "evidence"\n\n${vkeys.map((v) => `[[witnesses.keys]]\nvkey = "${v}"\n`).join("")}`;
    const settings = parsePolicyText(toml, null, null);
    assert.deepEqual(settings, { quorum: 3, witnesses: vkeys, wait_seconds: 2.5 });
    assert.deepEqual(parsePolicyText(vkeys.join("\n"), 3, 1), { quorum: 3, witnesses: vkeys, wait_seconds: 1 });
    assert.throws(() => parsePolicyText("[witnesses]\nquorum = 1\nhosts = 2\n", null, null), /unknown/);
    assert.throws(() => parsePolicyText(vkeys.join("\n"), null, null), /quorum/);
  });
});
