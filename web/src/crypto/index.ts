// The browser's crypto: everything secret is used here, on the device, and nowhere else.
export * from "./bytes.js";
export * from "./canonical.js";
export * from "./hashes.js";
export * from "./aead.js";
export * from "./pseudonym.js";
export * from "./xwing.js";
export * from "./hpke.js";
export * from "./recordkey.js";
export * from "./scoped.js";
export * from "./keyshare.js";
export * from "./capsule.js";
export * from "./recordopen.js";
export * from "./body.js";
export * from "./signatures.js";
export * from "./merkle.js";
export * from "./keyfile.js";
export * from "./seal.js";
