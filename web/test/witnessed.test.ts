// The web app's witness policy enforced against a fake gateway in this process: a log of
// leaves with RFC 9162 roots and consistency proofs, signed tree heads, checkpoints signed by
// the log's key and cosigned by witnesses (keys made here). The page's storage and fetch are
// stand-ins; the checks are the app's own (app/witness/witnessed.ts, session.ts advancePin).
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import * as n from "../src/crypto/checkpoint.js";
import {
  type Bytes, type IdentityKeys, type TreeHead, concat, leafHash, nodeHash, sha256, signJson, toBase64, toHex, utf8,
} from "../src/crypto/index.js";
import { advancePin, signIn, session } from "../src/app/session.js";
import { NoQuorum, SplitView, requireWitnessed } from "../src/app/witness/witnessed.js";
import { WitnessPolicy } from "../src/app/witness/policy.js";
import { type Evidence, evidenceList, savePolicy } from "../src/app/witness/store.js";

class MemoryStorage {
  private readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  clear(): void {
    this.items.clear();
  }
}
const storage = new MemoryStorage();
Object.assign(globalThis, { localStorage: storage, location: { origin: "http://gateway.test" } });

const ORIGIN = "gateway.test/ehrgate";
const seed = (label: string): Bytes => sha256(utf8(label));
const ledgerSecret = seed("ledger");
const logSecret = seed("log");
const witnessSecrets = [0, 1, 2].map((i) => seed(`witness-${i}`));
const witnessNames = [0, 1, 2].map((i) => `witness-${i}.test`);
const logVerifier = new n.NoteVerifier(ORIGIN, n.ALG_ED25519, ed25519.getPublicKey(logSecret) as Bytes);
const witnessVerifiers = witnessSecrets.map((s, i) => new n.NoteVerifier(witnessNames[i]!, n.ALG_COSIGNATURE_V1, ed25519.getPublicKey(s) as Bytes));
const witnessVkeys = witnessVerifiers.map((w) => w.vkey());

function largestPowerOfTwoBelow(size: number): number {
  let k = 1;
  while (k * 2 < size) k *= 2;
  return k;
}

function mth(leaves: Uint8Array[]): Bytes {
  if (leaves.length === 0) return sha256(new Uint8Array());
  if (leaves.length === 1) return leafHash(leaves[0]!);
  const k = largestPowerOfTwoBelow(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function subproof(m: number, leaves: Uint8Array[], complete: boolean): Bytes[] {
  if (m === leaves.length) return complete ? [] : [mth(leaves)];
  const k = largestPowerOfTwoBelow(leaves.length);
  if (m <= k) return [...subproof(m, leaves.slice(0, k), complete), mth(leaves.slice(k))];
  return [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}

function line(name: string, id: Uint8Array, signature: Uint8Array): string {
  return `\u2014 ${name} ${toBase64(concat(id, signature))}\n`;
}

/** One view of the log: its leaves, and which witnesses cosign its checkpoint. */
class FakeLog {
  constructor(public leaves: Uint8Array[], public cosigners: number[] = [0, 1, 2], public badCosigner: number | null = null) {}

  head(size = this.leaves.length): TreeHead {
    const header = { height: size, previous_hash: "00".repeat(32), tree_size: size, root: toHex(mth(this.leaves.slice(0, size))), timestamp: "2030-01-01T00:00:00.000000Z" };
    return { ...header, signature: signJson(ledgerSecret, header) };
  }

  checkpoint(): string {
    const text = `${ORIGIN}\n${this.leaves.length}\n${toBase64(mth(this.leaves))}\n`;
    let note = `${text}\n${line(ORIGIN, logVerifier.keyId, ed25519.sign(utf8(text), logSecret))}`;
    for (const i of this.cosigners) {
      const time = new Uint8Array(8);
      new DataView(time.buffer).setBigUint64(0, 1_700_000_000n + BigInt(i));
      let signature = ed25519.sign(n.cosignedMessage(utf8(text), 1_700_000_000n + BigInt(i)), witnessSecrets[i]!);
      if (i === this.badCosigner) signature = ed25519.sign(utf8("something else"), witnessSecrets[i]!);
      note += line(witnessNames[i]!, witnessVerifiers[i]!.keyId, concat(time, signature));
    }
    return note;
  }
}

const leaves = (prefix: string, count: number): Bytes[] => Array.from({ length: count }, (_, i) => utf8(`${prefix}-${i}`));
let gateway = new FakeLog(leaves("entry", 5));

function answer(body: unknown): Response {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), { status: 200 });
}

globalThis.fetch = (async (input: string | URL | Request) => {
  const url = new URL(String(input), "http://gateway.test");
  switch (url.pathname) {
    case "/v1/auth/challenge":
      return answer({ challenge: "c", audience: "a" });
    case "/v1/auth/token":
      return answer({ access_token: "t", role: "patient", expires_at: "2030-01-01T01:00:00Z" });
    case "/v1/ledger/head":
      return answer({ tree_head: gateway.head(), ledger_public_key: toBase64(ed25519.getPublicKey(ledgerSecret)), checkpoint_key: logVerifier.vkey(), log_origin: ORIGIN });
    case "/v1/ledger/checkpoint":
      return answer(gateway.checkpoint());
    case "/v1/ledger/consistency": {
      const old = Number(url.searchParams.get("old_size"));
      const size = Number(url.searchParams.get("new_size"));
      if (size > gateway.leaves.length) return new Response(JSON.stringify({ title: "Bad request", detail: "no such tree" }), { status: 400 });
      return answer({ proof: subproof(old, gateway.leaves.slice(0, size), true).map(toHex) });
    }
    default:
      return new Response("{}", { status: 404 });
  }
}) as typeof fetch;

async function signedIn(): Promise<void> {
  const keys = { kind: "patient", id: "p", role: "patient", signingKey: seed("patient") } as unknown as IdentityKeys;
  await signIn(keys);
}

function policy(quorum: number, wait = 0): void {
  savePolicy(WitnessPolicy.of({ quorum, witnesses: witnessVkeys, wait_seconds: wait }));
}

async function refused<T extends Error>(action: Promise<unknown>, kind: new (...args: never[]) => T): Promise<T> {
  try {
    await action;
  } catch (error) {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    return error as T;
  }
  assert.fail(`expected ${kind.name}, nothing was thrown`);
}

describe("witnessed tree heads", () => {
  beforeEach(async () => {
    storage.clear();
    gateway = new FakeLog(leaves("entry", 5));
    await signedIn();
  });

  it("without a policy nothing changes", async () => {
    assert.equal(await requireWitnessed(gateway.head()), null);
  });

  it("a head covered by a checkpoint with the quorum is believed, the checkpoint kept", async () => {
    policy(2);
    const said = await requireWitnessed(gateway.head(3));
    assert.match(String(said), /checkpoint of 5 entries cosigned by 3 of 3 trusted witnesses/);
    assert.match(String(storage.getItem("ehrgate.witnessed-checkpoint")), /gateway.test\/ehrgate\\n5\\n/);
  });

  it("too few cosignatures: refused after the wait", async () => {
    policy(2);
    gateway.cosigners = [1];
    const error = await refused(requireWitnessed(gateway.head()), NoQuorum);
    assert.match(error.message, /cosigned by 1 of the trusted witnesses \(witness-1.test\); the policy needs 2 of 3/);
    assert.equal(storage.getItem("ehrgate.witnessed-checkpoint"), null);
  });

  it("a trusted witness's failing cosignature refuses the checkpoint", async () => {
    policy(2);
    gateway.badCosigner = 2;
    const error = await refused(requireWitnessed(gateway.head()), Error);
    assert.match(error.message, /cosignature .* does not verify/);
  });

  it("a checkpoint smaller than the head does not cover it", async () => {
    policy(2);
    const head = gateway.head();
    gateway.leaves = gateway.leaves.slice(0, 4); // the gateway serves an older checkpoint
    await refused(requireWitnessed(head), NoQuorum);
  });

  it("a head the witnessed checkpoint excludes is a split view, kept with both views", async () => {
    policy(2);
    await requireWitnessed(gateway.head());
    const kept = storage.getItem("ehrgate.witnessed-checkpoint");
    gateway = new FakeLog([...leaves("entry", 2), ...leaves("forked", 3)], [2]);
    const error = await refused(requireWitnessed(gateway.head()), SplitView);
    assert.match(error.message, /different roots: the log forked/);
    const [evidence] = evidenceList() as [Evidence];
    assert.equal(evidence.kind, "split-view");
    assert.equal(evidence.gateway, "http://gateway.test");
    const signed = evidence.views.map((view) => view.signed);
    assert.ok(signed.includes(JSON.parse(kept!).note));
    assert.ok(signed.includes(gateway.checkpoint()), "the gateway's conflicting checkpoint is kept too");
    assert.deepEqual(signed[0], gateway.head());
  });

  it("a larger checkpoint that does not extend the witnessed one is a split view", async () => {
    policy(2);
    await requireWitnessed(gateway.head());
    gateway = new FakeLog([...leaves("entry", 2), ...leaves("forked", 5)], [0, 1, 2]);
    const error = await refused(requireWitnessed(gateway.head()), SplitView);
    assert.match(error.message, /checkpoint of 7 entries does not extend its checkpoint of 5 entries/);
    assert.equal(evidenceList().length, 1);
  });

  it("a larger checkpoint that extends the witnessed one moves it forward", async () => {
    policy(2);
    await requireWitnessed(gateway.head());
    gateway.leaves = [...gateway.leaves, ...leaves("more", 4)];
    assert.match(String(await requireWitnessed(gateway.head())), /checkpoint of 9 entries/);
    assert.match(String(storage.getItem("ehrgate.witnessed-checkpoint")), /\\n9\\n/);
    assert.equal(evidenceList().length, 0);
  });

  it("a witnessed checkpoint without the quorum of the policy in force does not cover", async () => {
    policy(2);
    gateway.cosigners = [0, 1];
    await requireWitnessed(gateway.head());
    policy(3);
    await refused(requireWitnessed(gateway.head()), NoQuorum);
  });
});

describe("the pinned head (advancePin)", () => {
  beforeEach(async () => {
    storage.clear();
    gateway = new FakeLog(leaves("entry", 5));
    await signedIn();
  });

  it("another root at the pinned size is a split view with both signed heads kept", async () => {
    const pinned = session().pinnedHead;
    const forked = new FakeLog([...leaves("entry", 2), ...leaves("forked", 3)]);
    const error = await refused(advancePin(forked.head()), SplitView);
    assert.match(error.message, /two different ledgers of 5 entries/);
    assert.deepEqual(evidenceList()[0]!.views.map((v) => v.signed), [forked.head(), pinned]);
  });

  it("a larger head that does not extend the pinned one is a split view", async () => {
    gateway = new FakeLog([...leaves("entry", 2), ...leaves("forked", 6)]);
    await refused(advancePin(gateway.head()), SplitView);
    assert.equal(evidenceList().length, 1);
  });

  it("a larger head that extends the pinned one moves the pin", async () => {
    gateway.leaves = [...gateway.leaves, ...leaves("more", 3)];
    assert.match(await advancePin(gateway.head()), /5 → 8 entries/);
    assert.equal(evidenceList().length, 0);
  });
});
