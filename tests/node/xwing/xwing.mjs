// Runs X-Wing and HPKE operations with a stock implementation (@hpke/hybridkem-x-wing and
// @hpke/core) for tests/envelope/test_xwing_interop.py. Reads {"ops": [...]} as JSON on
// stdin, answers {"results": [...]} on stdout, one result per operation; bytes are hex.
//
//   {"op": "keygen", "seed"}                       -> {"public_key"}
//   {"op": "encap", "public_key", "eseed"?}        -> {"ciphertext", "shared_secret"}
//   {"op": "decap", "seed", "ciphertext"}          -> {"shared_secret"}
//   {"op": "seal", "public_key", "info", "plaintext"} -> {"enc", "ciphertext"}   (HPKE base mode)
//   {"op": "open", "seed", "info", "enc", "ciphertext"} -> {"plaintext"}
import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { XWing } from "@hpke/hybridkem-x-wing";

const kem = new XWing();
const suite = new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes256Gcm() });

const fromHex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
const toHex = (bytes) => Buffer.from(new Uint8Array(bytes)).toString("hex");

async function privateKey(seedHex) {
  return (await kem.generateKeyPairDerand(fromHex(seedHex))).privateKey;
}

const operations = {
  async keygen({ seed }) {
    const pair = await kem.generateKeyPairDerand(fromHex(seed));
    return { public_key: toHex(await kem.serializePublicKey(pair.publicKey)) };
  },
  async encap({ public_key, eseed }) {
    const recipientPublicKey = await kem.deserializePublicKey(fromHex(public_key));
    const params = { recipientPublicKey };
    if (eseed !== undefined) params.ekm = fromHex(eseed);
    const { enc, sharedSecret } = await kem.encap(params);
    return { ciphertext: toHex(enc), shared_secret: toHex(sharedSecret) };
  },
  async decap({ seed, ciphertext }) {
    const recipientKey = await privateKey(seed);
    return { shared_secret: toHex(await kem.decap({ recipientKey, enc: fromHex(ciphertext) })) };
  },
  async seal({ public_key, info, plaintext }) {
    const recipientPublicKey = await kem.deserializePublicKey(fromHex(public_key));
    const sender = await suite.createSenderContext({ recipientPublicKey, info: fromHex(info) });
    const ciphertext = await sender.seal(fromHex(plaintext));
    return { enc: toHex(sender.enc), ciphertext: toHex(ciphertext) };
  },
  async open({ seed, info, enc, ciphertext }) {
    const recipient = await suite.createRecipientContext({
      recipientKey: await privateKey(seed),
      enc: fromHex(enc),
      info: fromHex(info),
    });
    return { plaintext: toHex(await recipient.open(fromHex(ciphertext))) };
  },
};

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { ops } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const results = [];
  for (const op of ops) {
    const run = operations[op.op];
    if (run === undefined) throw new Error(`unknown operation ${op.op}`);
    try {
      results.push(await run(op));
    } catch (error) {
      results.push({ error: `${error.name}: ${error.message}` });
    }
  }
  process.stdout.write(JSON.stringify({ kem_id: kem.id, results }));
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
