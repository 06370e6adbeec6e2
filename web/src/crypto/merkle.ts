// RFC 9162 Merkle inclusion proofs and signed tree heads (ledger/wire/merkle.py, blocks.py).
import { type Bytes, CryptoError, concat, equalBytes, fromBase64, fromHex } from "./bytes.js";
import { canonical } from "./canonical.js";
import { sha256 } from "./hashes.js";
import { verifyBytes } from "./signatures.js";

export interface TreeHead {
  height: number;
  previous_hash: string;
  tree_size: number;
  root: string;
  timestamp: string;
  signature: string;
}

export function leafHash(data: Uint8Array): Bytes {
  return sha256(concat(Uint8Array.of(0), data));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Bytes {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function bitLength(value: number): number {
  return value === 0 ? 0 : Math.floor(Math.log2(value)) + 1;
}

function popCount(value: number): number {
  let count = 0;
  for (let v = value; v > 0; v = Math.floor(v / 2)) count += v % 2;
  return count;
}

/** The root an inclusion proof implies (RFC 9162 §2.1.3.2), preconditions checked. */
export function rootFromInclusionProof(index: number, size: number, leaf: Uint8Array, proof: Uint8Array[]): Bytes {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || size <= 0 || index < 0 || index >= size) {
    throw new CryptoError(`leaf index ${index} is outside a tree of ${size} leaves`);
  }
  if (leaf.length !== 32 || proof.some((p) => p.length !== 32)) throw new CryptoError("proof hashes are 32 bytes");
  const inner = bitLength(Number(BigInt(index) ^ BigInt(size - 1)));
  const border = popCount(Math.floor(index / 2 ** inner));
  if (proof.length !== inner + border) throw new CryptoError("the inclusion proof has the wrong length");
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r: Bytes = Uint8Array.from(leaf) as Bytes;
  for (const p of proof) {
    if (sn === 0n) throw new CryptoError("the inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new CryptoError("the inclusion proof is too short");
  return r;
}

export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: Uint8Array[], root: Uint8Array): void {
  if (!equalBytes(rootFromInclusionProof(index, size, leaf, proof), root)) {
    throw new CryptoError(`the inclusion proof for leaf ${index} does not lead to the signed root`);
  }
}

export function verifyTreeHead(head: TreeHead, ledgerKey: Uint8Array): void {
  const { signature, ...header } = head;
  if (!verifyBytes(ledgerKey, canonical(header), fromBase64(signature))) {
    throw new CryptoError("the tree head is not signed by the pinned ledger key");
  }
}

export interface Receipt {
  index: number;
  tx_hash: string;
  tree_head: TreeHead;
  inclusion_proof: string[];
}

export function verifyReceipt(receipt: Receipt, ledgerKey: Uint8Array): void {
  verifyTreeHead(receipt.tree_head, ledgerKey);
  verifyInclusion(
    receipt.index, receipt.tree_head.tree_size, fromHex(receipt.tx_hash),
    receipt.inclusion_proof.map((p) => fromHex(p)), fromHex(receipt.tree_head.root),
  );
}

/** RFC 9162 §2.1.4.2: the tree (oldSize, oldRoot) is a prefix of (newSize, newRoot). */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: Uint8Array[]): void {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize <= 0 || oldSize > newSize) {
    throw new CryptoError(`a consistency proof needs 0 < old size <= new size, got ${oldSize} and ${newSize}`);
  }
  if (oldSize === newSize) {
    if (proof.length !== 0 || !equalBytes(oldRoot, newRoot)) throw new CryptoError(`the roots of two trees of ${oldSize} leaves differ`);
    return;
  }
  if (oldRoot.length !== 32 || newRoot.length !== 32 || proof.some((p) => p.length !== 32)) throw new CryptoError("proof hashes are 32 bytes");
  const old = BigInt(oldSize);
  const powerOfTwo = (old & (old - 1n)) === 0n;
  const inner = bitLength(Number((old - 1n) ^ BigInt(newSize - 1)));
  const border = popCount(Math.floor((oldSize - 1) / 2 ** inner));
  const shift = bitLength(Number(old & -old)) - 1;
  const expected = (powerOfTwo ? 0 : 1) + inner - shift + border;
  if (proof.length === 0 || proof.length !== expected) throw new CryptoError("the consistency proof has the wrong length");
  const path = powerOfTwo ? [oldRoot, ...proof] : proof;
  let fn = old - 1n;
  let sn = BigInt(newSize - 1);
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new CryptoError("the consistency proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equalBytes(fr, oldRoot) || !equalBytes(sr, newRoot)) {
    throw new CryptoError(`the ledger of ${newSize} entries does not extend the pinned one of ${oldSize}`);
  }
}
