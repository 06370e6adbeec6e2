// The browser crypto pinned to tests/vectors/envelope/ and refusing every tampered input.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { XWing } from "@hpke/hybridkem-x-wing";
import * as c from "../src/crypto/index.js";
import { plaintextOf, vector, vectorText } from "./vectors.js";

const hex = c.toHex;
const b64 = (text: string) => c.fromBase64(text);

async function collect(pieces: Uint8Array[]): Promise<Uint8Array> {
  return c.concat(...pieces);
}

function chunks(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out.length > 0 ? out : [data];
}

describe("pseudonym", () => {
  const vectors = vector("pseudonym.json");
  for (const v of vectors.valid) {
    it(v.description, () => {
      assert.equal(c.fromUtf8(c.canonicalUii(v.uii)), v.canonical_uii);
      assert.equal(c.pseudonym(c.fromHex(v.patient_key), v.uii), v.pseudonym);
    });
  }
  for (const v of vectors.invalid) {
    it(`refuses: ${v.description}`, () => {
      assert.throws(() => c.pseudonym(new Uint8Array(32), v.uii), c.CryptoError);
    });
  }
});

describe("record keys", () => {
  it("version 1 derives the 96 expanded bytes and the public key", () => {
    for (const v of vector("record_key.json")) {
      const key = c.recordPrivateKey(c.fromHex(v.patient_key), 1);
      assert.equal(hex(key.raw), v.okm);
      assert.equal(c.toBase64(key.publicKey), v.public_key);
    }
  });
  it("version 2 derives the X-Wing seed and the public key", () => {
    for (const v of vector("record_key_v2.json")) {
      const key = c.recordPrivateKey(c.fromHex(v.patient_key), 2);
      assert.equal(hex(key.raw), v.seed);
      assert.equal(c.toBase64(key.publicKey), v.public_key);
      assert.equal(c.recordKeyVersionOf(c.fromHex(v.patient_key), key.publicKey), 2);
    }
  });
  it("X-Wing: seed to public key, and decapsulation of the stored ciphertext", () => {
    for (const v of vector("xwing.json")) {
      const key = c.xwingPrivateKey(c.fromHex(v.seed));
      assert.equal(c.toBase64(key.publicKey), v.public_key);
      assert.equal(hex(c.decapsulate(key, c.fromHex(v.ciphertext))), v.shared_secret);
      const expanded = c.xwingPrivateKey(c.fromHex(v.expanded));
      assert.equal(c.toBase64(expanded.publicKey), v.public_key);
    }
  });
  it("HPKE interoperates with the stock X-Wing implementation, both ways", async () => {
    const kem = new XWing();
    const suite = new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const seed = c.fromHex(vector("xwing.json")[2].seed);
    const ours = c.xwingPrivateKey(seed);
    const info = c.utf8("interop");
    const sealed = await c.hpkeSeal(ours.publicKey, info, c.utf8("from us"));
    const pair = await kem.generateKeyPairDerand(seed);
    const recipient = await suite.createRecipientContext({ recipientKey: pair.privateKey, enc: sealed.slice(0, 1120), info });
    assert.equal(new TextDecoder().decode(await recipient.open(sealed.slice(1120))), "from us");
    const sender = await suite.createSenderContext({ recipientPublicKey: await kem.deserializePublicKey(ours.publicKey), info });
    const theirs = c.concat(new Uint8Array(sender.enc), new Uint8Array(await sender.seal(c.utf8("from them"))));
    assert.equal(c.fromUtf8(await c.hpkeOpen(ours, info, theirs)), "from them");
  });
});

describe("bodies", () => {
  const cases = vector("body.json").cases;
  for (const v of cases) {
    it(`${v.plaintext_length} bytes: sealed byte for byte, opened in any chunking`, async () => {
      const plaintext = plaintextOf(v.plaintext_length);
      const dek = c.fromHex(v.dek);
      assert.equal(hex(c.segmentKey(dek, c.fromHex(v.salt))), v.segment_key);
      const sealed = await c.sealBody(dek, c.fromHex(v.salt), plaintext);
      assert.equal(hex(sealed.body.subarray(0, 29)), v.header);
      assert.equal(sealed.body.length, v.body_size);
      assert.equal(sealed.bodySha256, v.body_sha256);
      if (v.body !== undefined) assert.equal(hex(sealed.body), v.body);
      const expected = { body_sha256: v.body_sha256, body_size: v.body_size, plaintext_sha256: v.plaintext_sha256, plaintext_size: v.plaintext_length };
      for (const size of [1 + 7919, 65552, 1 << 20]) {
        const opened = await collect(await c.openBody(chunks(sealed.body, size), dek, expected));
        assert.equal(hex(c.sha256(opened)), v.plaintext_sha256);
        const sized = await c.openSizedBody(chunks(sealed.body, size), dek, expected);
        assert.equal(hex(c.sha256(sized)), v.plaintext_sha256);
      }
      assert.equal(c.bodySizeFor(v.plaintext_length), v.body_size);
    });
  }

  const big = cases[cases.length - 1];
  const dek = c.fromHex(big.dek);
  const expected = { body_sha256: big.body_sha256, body_size: big.body_size, plaintext_sha256: big.plaintext_sha256, plaintext_size: big.plaintext_length };
  const sealedBig = () => c.sealBody(dek, c.fromHex(big.salt), plaintextOf(big.plaintext_length)).then((s) => s.body);
  const SEG = 65552;
  const refuse = async (body: Uint8Array, withExpectation: boolean) => {
    await assert.rejects(c.openBody(chunks(body, 10000), dek, withExpectation ? expected : undefined), c.CryptoError);
    // the app's opener (the crypto worker's), in pieces within and across segments
    if (withExpectation) {
      for (const size of [10000, 3 * SEG + 7]) await assert.rejects(c.openSizedBody(chunks(body, size), dek, expected), c.CryptoError);
    }
  };
  const tampers: Array<[string, (body: Uint8Array) => Uint8Array]> = [
    ["a flipped byte in a segment", (b) => { const t = b.slice(); t[29 + SEG + 100]! ^= 1; return t; }],
    ["a flipped byte in the header", (b) => { const t = b.slice(); t[12]! ^= 1; return t; }],
    ["truncated at a segment boundary", (b) => b.slice(0, 29 + 2 * SEG)],
    ["truncated inside a segment", (b) => b.slice(0, b.length - 5)],
    ["header only", (b) => b.slice(0, 29)],
    ["segments 0 and 1 swapped", (b) => c.concat(b.subarray(0, 29), b.subarray(29 + SEG, 29 + 2 * SEG), b.subarray(29, 29 + SEG), b.subarray(29 + 2 * SEG))],
    ["a byte appended", (b) => c.concat(b, Uint8Array.of(0))],
    ["a whole segment appended", (b) => c.concat(b, b.subarray(29, 29 + SEG))],
    ["the last segment dropped", (b) => b.slice(0, 29 + 3 * SEG)],
  ];
  for (const [name, tamper] of tampers) {
    it(`refuses a body with ${name} (with and without the capsule's hashes)`, async () => {
      const body = tamper(await sealedBig());
      await refuse(body, true);
      await refuse(body, false);
    });
  }
  it("refuses a body of another file (other hashes in the capsule)", async () => {
    const other = cases[5];
    const body = (await c.sealBody(dek, c.fromHex(big.salt), plaintextOf(other.plaintext_length))).body;
    await refuse(body, true);
  });
  it("refuses an extra empty last segment", async () => {
    const small = cases[4]; // exactly one full segment
    const key = c.fromHex(small.dek);
    const { body } = await c.sealBody(key, c.fromHex(small.salt), plaintextOf(small.plaintext_length));
    const header = body.subarray(0, 29);
    const aeadKey = await c.aesGcmKey(c.segmentKey(key, c.fromHex(small.salt)));
    const aad = c.sha256(header);
    const first = await c.aesGcmEncryptWith(aeadKey, c.segmentNonce(0, false), plaintextOf(65536), aad);
    const empty = await c.aesGcmEncryptWith(aeadKey, c.segmentNonce(1, true), new Uint8Array(0), aad);
    await assert.rejects(c.openBody([c.concat(header, first, empty)], key), c.CryptoError);
    const body2 = c.concat(header, first, empty);
    const claimed = { body_sha256: hex(c.sha256(body2)), body_size: body2.length, plaintext_sha256: hex(c.sha256(plaintextOf(65536))), plaintext_size: 65536 };
    await assert.rejects(c.openSizedBody([body2], key, claimed), c.CryptoError);
  });
  it("the app's opener refuses a capsule whose sizes do not fit together, and a body of another size", async () => {
    assert.throws(() => new c.SizedBodyOpener(dek, { ...expected, body_size: expected.body_size + 16 }), c.CryptoError);
    const body = await sealedBig();
    await assert.rejects(c.openSizedBody([body.subarray(0, body.length - 1)], dek, expected), c.CryptoError);
    await assert.rejects(c.openSizedBody([body, Uint8Array.of(0)], dek, expected), c.CryptoError);
    await assert.rejects(c.openSizedBody([body], dek, { ...expected, plaintext_sha256: "00".repeat(32) }), c.CryptoError);
    await assert.rejects(c.openSizedBody([body], dek, { ...expected, body_sha256: "00".repeat(32) }), c.CryptoError);
    const other = new Uint8Array(dek);
    other[0]! ^= 1;
    await assert.rejects(c.openSizedBody([body], other, expected), c.CryptoError);
  });
});

for (const [name, version] of [["capsule.json", 1], ["capsule_v2.json", 2]] as const) {
  describe(`capsule, version ${version} keys`, () => {
    const v = vector(name);
    const capsule = c.utf8(v.capsule);
    const doctor = c.xwingPrivateKey(b64(v.doctor_private_key));
    const record = c.recordPrivateKey(c.fromHex(v.patient_key), version);
    const pseudonym = v.fields.pseudonym;
    const facts = { pseudonym, category: v.fields.category, created_at: v.fields.created_at };

    it("opens for the doctor and for the patient's record key, with the same metadata", async () => {
      for (const [key, id] of [[doctor, "dr-house"], [record, pseudonym]] as const) {
        const opened = await c.openCapsule(capsule, key, id);
        assert.equal(hex(opened.dataKey), v.dek);
        const m = opened.metadata;
        for (const [field, value] of Object.entries(v.fields)) assert.equal((m as any)[field], value);
        assert.equal(m.signer_id, v.signer_id);
        assert.equal(m.plaintext_sha256, v.plaintext_sha256);
        assert.equal(m.body_sha256, v.body_sha256);
        assert.equal(m.body_size, v.body_size);
        c.verifyRecordSignature(m, c.fromHex(v.signer_verify_key), facts);
      }
    });
    it("reproduces body, metadata ciphertext and signature from the fixed DEK, salt and nonce", async () => {
      const result = await c.seal({
        plaintext: plaintextOf(v.plaintext_length),
        recipients: [[pseudonym, record.publicKey], ["dr-house", doctor.publicKey]],
        filename: v.fields.filename, contentType: v.fields.content_type, pseudonym,
        category: v.fields.category, createdAt: v.fields.created_at, uploaderId: v.fields.uploader_id,
        signerId: v.signer_id, signingKey: c.fromHex(v.signer_signing_key),
      }, { dataKey: c.fromHex(v.dek), salt: c.fromHex(v.salt), metaNonce: c.fromHex(v.meta_nonce) });
      assert.equal(result.bodySha256, v.body_sha256);
      assert.equal(result.body.length, v.body_size);
      assert.equal(JSON.parse(c.fromUtf8(result.capsule)).meta, JSON.parse(v.capsule).meta);
      const reopened = await c.openCapsule(result.capsule, doctor, "dr-house");
      assert.equal(reopened.metadata.signature, (await c.openCapsule(capsule, doctor, "dr-house")).metadata.signature);
      const plain = await collect(await c.openBody(chunks(result.body, 4096), reopened.dataKey, reopened.metadata));
      assert.equal(hex(c.sha256(plain)), v.plaintext_sha256);
    });
    it("refuses the wrong signer, and facts the ledger does not state", async () => {
      const { metadata } = await c.openCapsule(capsule, doctor, "dr-house");
      assert.throws(() => c.verifyRecordSignature(metadata, c.verifyKeyOf(new Uint8Array(32)), facts), c.CryptoError);
      assert.throws(() => c.verifyRecordSignature(metadata, c.fromHex(v.signer_verify_key), { ...facts, category: "lab" }), c.CryptoError);
    });
    const document = JSON.parse(v.capsule);
    const changes: Array<[string, () => Uint8Array]> = [
      ["a flipped MAC bit", () => { const mac = b64(document.mac); mac[0]! ^= 1; return c.canonical({ ...document, mac: c.toBase64(mac) }); }],
      ["changed metadata", () => { const meta = b64(document.meta); meta[40]! ^= 1; return c.canonical({ ...document, meta: c.toBase64(meta) }); }],
      ["another recipient's entry changed", () => {
        const recipients = document.recipients.map((r: any) => r.id === "dr-house" ? r : { ...r, wrapped_key: c.toBase64(b64(r.wrapped_key).map((x, i) => (i === 5 ? x ^ 1 : x))) });
        return c.canonical({ ...document, recipients });
      }],
      ["a recipient removed", () => c.canonical({ ...document, recipients: document.recipients.filter((r: any) => r.id === "dr-house") })],
      ["whitespace added (not canonical)", () => c.utf8(JSON.stringify(document, null, 1))],
      ["an extra member", () => c.canonical({ ...document, extra: 1 })],
      ["another version", () => c.canonical({ ...document, version: 2 })],
      ["truncated", () => capsule.slice(0, capsule.length - 2)],
    ];
    for (const [what, make] of changes) {
      it(`refuses a capsule with ${what}`, async () => {
        await assert.rejects(c.openCapsule(make(), doctor, "dr-house"), c.CryptoError);
      });
    }
    it("refuses an unknown recipient and the wrong key", async () => {
      await assert.rejects(c.openCapsule(capsule, doctor, "dr-who"), c.CryptoError);
      await assert.rejects(c.openCapsule(capsule, record, "dr-house"), c.CryptoError);
    });
  });
}

for (const [name, version] of [["key_share.json", 1], ["key_share_v2.json", 2]] as const) {
  describe(`key share, version ${version} keys`, () => {
    const v = vector(name);
    const share = b64(v.share);
    const granteeKey = c.xwingPrivateKey(b64(v.grantee_private_key));
    const context = { pseudonym: v.pseudonym, granteeId: v.grantee_id, granteeKey };
    it("binds the documented info bytes", () => {
      assert.equal(hex(c.keyShareInfo(v.pseudonym, v.grantee_id)), v.info);
    });
    it("opens to K and the record key of the matching version", async () => {
      const recordPublicKey = c.recordPrivateKey(c.fromHex(v.patient_key), version).publicKey;
      if (v.record_public_key !== undefined) assert.equal(c.toBase64(recordPublicKey), v.record_public_key);
      const opened = await c.openShare("k-v1", share, { ...context, recordPublicKey });
      assert.equal(hex(opened.patientKey!), v.patient_key);
      assert.equal(c.toBase64(opened.recordKey("any", "2026-01-31T12:00:00Z")!.publicKey), c.toBase64(recordPublicKey));
    });
    it("refuses another grantee, another patient, a changed share, a foreign record key, an unknown format", async () => {
      await assert.rejects(c.openShare("k-v1", share, { ...context, granteeId: "dr-who" }), c.CryptoError);
      await assert.rejects(c.openShare("k-v1", share, { ...context, pseudonym: "0".repeat(64) }), c.CryptoError);
      const changed = share.slice(); changed[1130]! ^= 1;
      await assert.rejects(c.openShare("k-v1", changed, context), c.CryptoError);
      await assert.rejects(c.openShare("k-v1", share.slice(0, 100), context), c.CryptoError);
      await assert.rejects(c.openShare("k-v1", share, { ...context, recordPublicKey: c.recordPrivateKey(new Uint8Array(32), 2).publicKey }), c.CryptoError);
      await assert.rejects(c.openShare("nope", share, context), c.CryptoError);
    });
    it("a share sealed here opens for the same grantee", async () => {
      const sealed = await c.sealPatientKeyShare(c.fromHex(v.patient_key), v.pseudonym, v.grantee_id, granteeKey.publicKey);
      assert.equal(hex((await c.openShare("k-v1", sealed, context)).patientKey!), v.patient_key);
    });
  });
}

describe("key files", () => {
  const expected = vector("keyfiles/expected.json");
  const cases: Array<[string, string, number]> = [
    ["v1-identity.key", "identity", 1], ["v1-identity-protected.key", "identity", 1],
    ["v1-patient.key", "patient", 1], ["v1-patient-protected.key", "patient", 1],
    ["v2-identity.key", "identity", 2], ["v2-patient.key", "patient", 2],
  ];
  for (const [file, kind, version] of cases) {
    it(`${file} gives the expected public keys`, async () => {
      const text = vectorText(`keyfiles/${file}`);
      const keys = await c.loadKeyFile(text, c.keyFileNeedsPassphrase(text) ? expected.passphrase : undefined);
      assert.equal(keys.kind, kind);
      const who = kind === "identity" ? "doctor_public_key" : "patient_identity_public_key";
      assert.equal(c.toBase64(keys.encryptionKey.publicKey), expected[`${who}_v${version}`]);
      if (kind === "patient") {
        assert.equal(keys.pseudonym, expected.pseudonym);
        const record = c.recordPrivateKey(keys.patientKey!, keys.recordKeyVersion!);
        assert.equal(c.toBase64(record.publicKey), expected[`record_public_key_v${keys.recordKeyVersion}`]);
      }
    });
  }
  it("refuses a wrong or missing passphrase, an edited protected file, a public file", async () => {
    const text = vectorText("keyfiles/v1-identity-protected.key");
    await assert.rejects(c.loadKeyFile(text, "wrong"), /passphrase does not open/);
    await assert.rejects(c.loadKeyFile(text), /enter its passphrase/);
    const edited = JSON.stringify({ ...JSON.parse(text), role: "admin" });
    await assert.rejects(c.loadKeyFile(edited, expected.passphrase), /passphrase does not open/);
    await assert.rejects(c.loadKeyFile(JSON.stringify({ id: "x", role: "clinician" })), /not an ehrgate private key file/);
    await assert.rejects(c.loadKeyFile("not json"), /not JSON/);
  });
});

describe("Merkle proofs and tree heads", () => {
  const leaves = Array.from({ length: 13 }, (_, i) => c.leafHash(c.utf8(`leaf ${i}`)));
  const root = (items: Uint8Array[]): Uint8Array => {
    if (items.length === 1) return items[0]!;
    let k = 1;
    while (k * 2 < items.length) k *= 2;
    return c.nodeHash(root(items.slice(0, k)), root(items.slice(k)));
  };
  const proof = (index: number, items: Uint8Array[]): Uint8Array[] => {
    if (items.length === 1) return [];
    let k = 1;
    while (k * 2 < items.length) k *= 2;
    return index < k
      ? [...proof(index, items.slice(0, k)), root(items.slice(k))]
      : [...proof(index - k, items.slice(k)), root(items.slice(0, k))];
  };
  it("every leaf of trees of every size up to 13 verifies; a changed proof does not", () => {
    for (let size = 1; size <= leaves.length; size++) {
      const items = leaves.slice(0, size);
      for (let index = 0; index < size; index++) {
        const path = proof(index, items);
        c.verifyInclusion(index, size, items[index]!, path, root(items));
        if (path.length > 0) {
          const bad = path.map((p, i) => (i === 0 ? c.sha256(p) : p));
          assert.throws(() => c.verifyInclusion(index, size, items[index]!, bad, root(items)), c.CryptoError);
          assert.throws(() => c.verifyInclusion(index, size, items[index]!, path.slice(1), root(items)), c.CryptoError);
        }
        assert.throws(() => c.verifyInclusion(index, size, c.sha256(items[index]!), path, root(items)), c.CryptoError);
      }
    }
    assert.throws(() => c.verifyInclusion(5, 5, leaves[0]!, [], leaves[0]!), c.CryptoError);
  });
  const consistency = (m: number, items: Uint8Array[], complete: boolean): Uint8Array[] => {
    if (m === items.length) return complete ? [] : [root(items)];
    let k = 1;
    while (k * 2 < items.length) k *= 2;
    return m <= k
      ? [...consistency(m, items.slice(0, k), complete), root(items.slice(k))]
      : [...consistency(m - k, items.slice(k), false), root(items.slice(0, k))];
  };
  it("consistency proofs between every pair of sizes up to 13 verify; changed ones do not", () => {
    for (let m = 1; m <= leaves.length; m++) {
      for (let n = m; n <= leaves.length; n++) {
        const oldRoot = root(leaves.slice(0, m));
        const newRoot = root(leaves.slice(0, n));
        const path = consistency(m, leaves.slice(0, n), true);
        c.verifyConsistency(m, n, oldRoot, newRoot, path);
        if (m === n) continue;
        assert.throws(() => c.verifyConsistency(m, n, c.sha256(oldRoot), newRoot, path), c.CryptoError);
        assert.throws(() => c.verifyConsistency(m, n, oldRoot, c.sha256(newRoot), path), c.CryptoError);
        assert.throws(() => c.verifyConsistency(m, n, oldRoot, newRoot, path.map((p, i) => (i === path.length - 1 ? c.sha256(p) : p))), c.CryptoError);
        assert.throws(() => c.verifyConsistency(m, n, oldRoot, newRoot, path.slice(0, -1)), c.CryptoError);
        // a forked ledger: same size, another leaf in the old part
        const forked = [...leaves.slice(0, n)];
        forked[m - 1] = c.sha256(forked[m - 1]!);
        assert.throws(() => c.verifyConsistency(m, n, oldRoot, root(forked), consistency(m, forked, true)), c.CryptoError);
      }
    }
  });
  it("a tree head verifies under the ledger key only, and not once changed", () => {
    const secret = c.sha256(c.utf8("ledger key"));
    const header = { height: 3, previous_hash: "00".repeat(32), tree_size: 13, root: c.toHex(root(leaves)), timestamp: "2026-01-31T12:00:00Z" };
    const head = { ...header, signature: c.signJson(secret, header) };
    c.verifyTreeHead(head, c.verifyKeyOf(secret));
    assert.throws(() => c.verifyTreeHead({ ...head, tree_size: 14 }, c.verifyKeyOf(secret)), c.CryptoError);
    assert.throws(() => c.verifyTreeHead(head, c.verifyKeyOf(c.sha256(secret))), c.CryptoError);
    c.verifyReceipt({ index: 7, tx_hash: c.toHex(leaves[7]!), tree_head: head, inclusion_proof: proof(7, leaves).map(c.toHex) }, c.verifyKeyOf(secret));
  });
});

describe("key files made in the browser", () => {
  it("new patient keys round-trip through a plain and a protected version 2 file", async () => {
    const uii = { name: "Ana Müller", birth_date: "1961-04-12" };
    const keys = c.createPatientKeys(uii);
    assert.equal(keys.pseudonym, c.pseudonym(keys.patientKey!, uii));
    assert.equal(keys.encryptionKey.form, "seed");
    for (const passphrase of [undefined, "a passphrase"]) {
      const text = await c.encodeKeyFile(keys, passphrase, 2 ** 10);
      assert.equal(c.keyFileNeedsPassphrase(text), passphrase !== undefined);
      const loaded = await c.loadKeyFile(text, passphrase);
      assert.equal(loaded.pseudonym, keys.pseudonym);
      assert.equal(c.toHex(loaded.patientKey!), c.toHex(keys.patientKey!));
      assert.equal(c.toHex(loaded.signingKey), c.toHex(keys.signingKey));
      assert.equal(c.toHex(loaded.encryptionKey.raw), c.toHex(keys.encryptionKey.raw));
      assert.equal(loaded.recordKeyVersion, 2);
      if (passphrase !== undefined) await assert.rejects(c.loadKeyFile(text, "wrong"), /passphrase does not open/);
    }
  });
});

describe("scoped record keys (scoped_key.json)", () => {
  const v = vector("scoped_key.json");
  const range = (from: number, to: number) => Uint8Array.from({ length: to - from }, (_, i) => from + i);
  it("month seeds, public keys and key ids from K", () => {
    for (const k of v.keys) {
      const K = c.fromHex(k.patient_key);
      assert.equal(hex(c.scopedSeed(K, k.category, k.period)), k.seed);
      assert.equal(c.toBase64(c.scopedPrivateKey(K, k.category, k.period).publicKey), k.public_key);
      assert.equal(c.scopedKeyId(k.category, k.period), k.key_id);
      assert.deepEqual(c.parseScopedKeyId(k.key_id), [k.category, k.period]);
    }
  });
  it("refuses bad categories, periods and key ids", () => {
    const K = new Uint8Array(32);
    for (const category of ["Lab", "1lab", "", "lab/results", "a".repeat(64)]) assert.throws(() => c.scopedSeed(K, category, "2026-01"), c.CryptoError);
    for (const period of ["2026-13", "2026-00", "0000-01", "2026-1", "26-01", "2026-01-01"]) assert.throws(() => c.scopedSeed(K, "lab", period), c.CryptoError);
    for (const id of ["identity", "scoped-v2/lab", "scoped-v1/lab/2026-01", "scoped-v2/Lab/2026-01", "scoped-v2/lab/2026-13/x"]) assert.equal(c.parseScopedKeyId(id), null);
  });
  it("months, spans and a grant's months as the ledger counts them", () => {
    assert.deepEqual(c.months("2025-11", "2026-02"), ["2025-11", "2025-12", "2026-01", "2026-02"]);
    assert.equal(c.nextPeriod("2026-12", 24), "2028-12");
    assert.throws(() => c.months("2026-02", "2026-01"), c.CryptoError);
    assert.deepEqual(c.grantMonths("2026-01-15T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z"), ["2026-01", "2026-02"]);
    assert.deepEqual(c.grantMonths("2026-01-15T00:00:00Z", "2026-03-01T00:00:00.000001Z"), ["2026-01", "2026-03"]);
    assert.equal(c.recordPeriod("2026-02-28T23:59:59Z"), "2026-02");
  });

  const s = v.share;
  const share = b64(s.share);
  const granteeKey = c.xwingPrivateKey(b64(s.grantee_private_key));
  const context = { pseudonym: s.pseudonym, granteeId: s.grantee_id, granteeKey };
  const K = c.fromHex(v.keys[0].patient_key);
  it("scoped share: the documented info bytes, and the vector opens to exactly its seeds", async () => {
    assert.equal(hex(c.scopedShareInfo(s.pseudonym, s.grantee_id)), s.info);
    const opened = await c.openShare("scoped-v2", share, context);
    assert.deepEqual(opened.scope!.map((x) => [...x]), s.scope);
    for (const [category, period] of s.scope) {
      const want = c.scopedPrivateKey(K, category, period).publicKey;
      assert.deepEqual(opened.keyFor(c.scopedKeyId(category, period))!.publicKey, want);
      assert.deepEqual(opened.recordKey(category, `${period}-10T00:00:00Z`)!.publicKey, want);
    }
    assert.equal(opened.keyFor("scoped-v2/lab-results/2026-03"), null);
    assert.equal(opened.keyFor(null), null);
    assert.equal(opened.patientKey, undefined);
  });
  it("scoped share: sealed here, its plaintext is the vector's byte for byte", async () => {
    const sealed = await c.sealScopedShare(K, s.pseudonym, s.grantee_id, granteeKey.publicKey, [...s.scope].reverse());
    const plaintext = await c.hpkeOpen(granteeKey, c.fromHex(s.info), sealed);
    assert.equal(c.fromUtf8(plaintext), s.plaintext);
    assert.ok("scoped-v2" in c.SHARE_FORMATS);
  });
  it("scoped share: refuses another grantee, another patient, a changed share, a seed not matching a published key", async () => {
    await assert.rejects(c.openShare("scoped-v2", share, { ...context, granteeId: "dr-who" }), c.CryptoError);
    await assert.rejects(c.openShare("scoped-v2", share, { ...context, pseudonym: "0".repeat(64) }), c.CryptoError);
    const changed = share.slice(); changed[1130]! ^= 1;
    await assert.rejects(c.openShare("scoped-v2", changed, context), c.CryptoError);
    const wrong = new Map([["lab-results/2026-01", c.scopedPrivateKey(K, "lab-results", "2026-03").publicKey]]);
    await assert.rejects(c.openShare("scoped-v2", share, { ...context, published: wrong }), c.CryptoError);
    const right = new Map([["lab-results/2026-01", c.scopedPrivateKey(K, "lab-results", "2026-01").publicKey]]);
    await c.openShare("scoped-v2", share, { ...context, published: right });
    const unsorted = await c.hpkeSeal(granteeKey.publicKey, c.fromHex(s.info), c.utf8(s.plaintext.replace('"lab-results","period":"2026-01"', '"lab-results","period":"2026-09"')));
    await assert.rejects(c.openShare("scoped-v2", unsorted, context), c.CryptoError);
  });

  const cap = v.capsule;
  const capsule = c.utf8(cap.capsule);
  const doctor = c.xwingPrivateKey(b64(cap.doctor_private_key));
  it("capsule v2: names the month key, opens with K and with the share's seeds, checks category and month", async () => {
    assert.equal(c.capsuleKeyId(capsule, cap.pseudonym), cap.key_id);
    assert.equal(c.capsuleKeyId(capsule, "dr-house"), "identity");
    const withK = await c.openRecordCapsule(capsule, cap.pseudonym, c.patientKeyChooser(K, 2));
    assert.equal(withK.metadata.category, cap.category);
    assert.equal(withK.metadata.created_at, cap.created_at);
    const opened = await c.openShare("scoped-v2", share, context);
    const withSeeds = await c.openRecordCapsule(capsule, cap.pseudonym, (id) => opened.keyFor(id));
    assert.equal(hex(withSeeds.dataKey), hex(withK.dataKey));
    assert.equal(hex((await c.openCapsule(capsule, doctor, "dr-house")).dataKey), hex(range(64, 96)));
  });
  it("capsule v2: refuses a seed of another month, a key id changed, a version 1 wrap of the same entry", async () => {
    const onlyJanuary = (id: string | null) => (id === "scoped-v2/lab-results/2026-01" ? c.scopedPrivateKey(K, "lab-results", "2026-01") : null);
    await assert.rejects(c.openRecordCapsule(capsule, cap.pseudonym, onlyJanuary), c.KeyNotHeld);
    const document = JSON.parse(cap.capsule);
    const renamed = c.canonical({ ...document, recipients: document.recipients.map((r: any) => (r.id === cap.pseudonym ? { ...r, key: "scoped-v2/lab-results/2026-01" } : r)) });
    const januaryKeyFromFeb = () => c.scopedPrivateKey(K, "lab-results", "2026-02");
    await assert.rejects(c.openRecordCapsule(renamed, cap.pseudonym, januaryKeyFromFeb), c.CryptoError);
    const v1 = c.canonical({ ...document, version: 1, recipients: document.recipients.map(({ key: _k, ...r }: any) => r) });
    await assert.rejects(c.openCapsule(v1, c.scopedPrivateKey(K, "lab-results", "2026-02"), cap.pseudonym), c.CryptoError);
  });
  it("capsule v2: sealed here to the published month key, byte for byte the vector's metadata, and opens", async () => {
    const result = await c.seal({
      plaintext: plaintextOf(cap.plaintext_length),
      recipients: [[cap.pseudonym, c.scopedPrivateKey(K, "lab-results", "2026-02").publicKey], ["dr-house", doctor.publicKey]],
      scoped: true, filename: "cbc.pdf", contentType: "application/pdf", pseudonym: cap.pseudonym,
      category: cap.category, createdAt: cap.created_at, uploaderId: "aria-export", signerId: "aria-export", signingKey: range(32, 64),
    }, { dataKey: range(64, 96), salt: range(0, 16), metaNonce: range(0, 12) });
    const made = JSON.parse(c.fromUtf8(result.capsule));
    const want = JSON.parse(cap.capsule);
    assert.equal(made.version, 2);
    assert.equal(made.meta, want.meta);
    assert.deepEqual(made.recipients.map((r: any) => [r.id, r.key]), want.recipients.map((r: any) => [r.id, r.key]));
    const reopened = await c.openRecordCapsule(result.capsule, cap.pseudonym, c.patientKeyChooser(K, 2));
    assert.equal(reopened.metadata.signature, (await c.openCapsule(capsule, doctor, "dr-house")).metadata.signature);
    // a capsule whose entry names January while its metadata says February opens with the
    // January key, and is refused all the same
    const january = c.scopedPrivateKey(K, "lab-results", "2026-01");
    const meta = await c.encryptMetadata(range(64, 96), reopened.metadata, range(0, 12));
    const lying = await c.buildCapsule(range(64, 96), [[cap.pseudonym, january.publicKey]], meta, new Map([[cap.pseudonym, "scoped-v2/lab-results/2026-01"]]));
    await c.openCapsule(lying, january, cap.pseudonym);
    await assert.rejects(c.openRecordCapsule(lying, cap.pseudonym, c.patientKeyChooser(K, 2)), /another category or month/);
  });
});

describe("a published key is believed only from the patient's signed publish_keys", () => {
  const K = c.fromHex(vector("scoped_key.json").keys[0].patient_key);
  const secret = Uint8Array.from({ length: 32 }, (_, i) => i + 7);
  const pseudonym = "ab".repeat(32);
  const key = (category: string, period: string) => c.scopedPrivateKey(K, category, period).publicKey;
  const make = (body: Record<string, unknown>, signer = "patient-1", signWith = secret) => {
    const payload = { type: "publish_keys", body, signer };
    return { ...payload, signature: c.signJson(signWith, payload) };
  };
  const keys = [["lab-results", "2026-01"], ["lab-results", "2026-02"]].map(([category, period]) => ({ category, period, public_key: c.toBase64(key(category!, period!)) }));
  const tx = make({ pseudonym, keys, tx_id: "1", issued_at: "2026-01-01T00:00:00.000000Z" });
  const claim = {
    pseudonym, category: "lab-results", period: "2026-02", patientId: "patient-1",
    patientVerifyKey: c.verifyKeyOf(secret), publicKeySha256: hex(c.sha256(key("lab-results", "2026-02"))),
  };
  it("gives the signed key of the pair asked for", () => {
    assert.deepEqual(c.publishedKeyFrom(tx, claim), key("lab-results", "2026-02"));
  });
  it("refuses another signer, a changed body, another pseudonym, a pair not carried, another SHA-256, another type", () => {
    assert.throws(() => c.publishedKeyFrom(make(tx.body, "patient-1", new Uint8Array(32).fill(9)), claim), /not signed by the patient/);
    assert.throws(() => c.publishedKeyFrom(make(tx.body, "dr-house"), claim), /own publish_keys/);
    const swapped = { ...tx, body: { ...tx.body, keys: [keys[0], { ...keys[1]!, public_key: keys[0]!.public_key }] } };
    assert.throws(() => c.publishedKeyFrom(swapped, claim), /not signed by the patient/);
    assert.throws(() => c.publishedKeyFrom(tx, { ...claim, pseudonym: "cd".repeat(32) }), /own publish_keys/);
    assert.throws(() => c.publishedKeyFrom(tx, { ...claim, period: "2026-03" }), /carries no key/);
    assert.throws(() => c.publishedKeyFrom(tx, { ...claim, publicKeySha256: "0".repeat(64) }), /another key than the signed one/);
    assert.throws(() => c.publishedKeyFrom({ ...tx, type: "register_patient" }, claim), /own publish_keys/);
  });
});
