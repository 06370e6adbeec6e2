// RFC 8785 (JCS) canonical JSON, the form every signed or hashed object of ehrgate takes.
import canonicalize from "canonicalize";
import { type Bytes, CryptoError, utf8 } from "./bytes.js";

export function canonicalText(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new CryptoError("value has no JSON form");
  return text;
}

export function canonical(value: unknown): Bytes {
  return utf8(canonicalText(value));
}
