// Keys kept on this device, if the user asks: the key file's text encrypted with AES-256-GCM
// under a non-extractable WebCrypto key, both in IndexedDB. Script on this origin can use
// the key but never read it out, and nothing leaves the device; "Forget" deletes both.
import { fromUtf8, utf8 } from "../crypto/index.js";

const DATABASE = "ehrgate";
const STORE = "kept-keys";
const ENTRY = "keys";

interface Kept {
  wrapping: CryptoKey;
  iv: Uint8Array<ArrayBuffer>;
  ciphertext: ArrayBuffer;
  label: string;
}

function database(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run<T>(mode: IDBTransactionMode, act: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await database();
  try {
    return await new Promise<T>((resolve, reject) => {
      const request = act(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

export async function keepKeys(keyFileText: string, label: string): Promise<void> {
  const wrapping = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ciphertext = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, wrapping, utf8(keyFileText));
  await run("readwrite", (store) => store.put({ wrapping, iv, ciphertext, label } satisfies Kept, ENTRY));
}

export async function keptLabel(): Promise<string | null> {
  try {
    const kept = (await run("readonly", (store) => store.get(ENTRY))) as Kept | undefined;
    return kept?.label ?? null;
  } catch {
    return null;
  }
}

export async function keptKeyFile(): Promise<string> {
  const kept = (await run("readonly", (store) => store.get(ENTRY))) as Kept | undefined;
  if (kept === undefined) throw new Error("no keys are kept on this device");
  return fromUtf8(new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: kept.iv }, kept.wrapping, kept.ciphertext)));
}

export async function forgetKeys(): Promise<void> {
  await run("readwrite", (store) => store.delete(ENTRY));
}
