// Link codes: a patient's pseudonym written for people. The 32 bytes in 52 characters of
// the bech32 alphabet (no 1, b, i, o), then 6 check characters of the bech32m checksum
// (BIP 350) over the human-readable part "ehr" and the data: any error in up to four
// characters is detected, and more with a chance of about one in a billion of slipping
// through. Shown in groups of four; read back ignoring case, spaces and dashes. The code
// is the pseudonym itself, so it tells nobody anything the pseudonym does not, and the app
// carries it only in the URL's fragment (#/patient/<code>), which browsers never send.
import { CryptoError, bytes, fromHex, toHex } from "./bytes.js";
import { isPseudonym } from "./pseudonym.js";

const ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const HRP = "ehr";
const BECH32M = 0x2bc830a3;
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
const DATA_CHARS = 52;
const CHECK_CHARS = 6;
export const LINK_CODE_CHARS = DATA_CHARS + CHECK_CHARS;

function polymod(values: number[]): number {
  let check = 1;
  for (const value of values) {
    const top = check >>> 25;
    check = (((check & 0x1ffffff) << 5) ^ value) >>> 0;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) check = (check ^ (GENERATOR[i] as number)) >>> 0;
  }
  return check;
}

function expandedHrp(): number[] {
  const codes = [...HRP].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >>> 5), 0, ...codes.map((c) => c & 31)];
}

function checksum(data: number[]): number[] {
  const value = polymod([...expandedHrp(), ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32M;
  return Array.from({ length: CHECK_CHARS }, (_, i) => (value >>> (5 * (CHECK_CHARS - 1 - i))) & 31);
}

function toFiveBits(data: Uint8Array): number[] {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of data) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push((acc >>> bits) & 31);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out.push((acc << (5 - bits)) & 31);
  return out;
}

/** The link code of a pseudonym, in groups of four characters. */
export function linkCode(pseudonym: string): string {
  if (!isPseudonym(pseudonym)) throw new CryptoError("a pseudonym is 64 hexadecimal characters");
  const data = toFiveBits(fromHex(pseudonym));
  const text = [...data, ...checksum(data)].map((v) => ALPHABET[v]).join("");
  return (text.match(/.{1,4}/g) as string[]).join("-");
}

/** The pseudonym a link code carries; a typo or a code of something else is refused. */
export function pseudonymFromLinkCode(code: string): string {
  const text = code.replace(/[\s-]/g, "").toLowerCase();
  const wrong = [...text].find((c) => !ALPHABET.includes(c));
  if (wrong !== undefined) {
    throw new CryptoError(`"${wrong}" does not occur in link codes (they use digits and letters, but not 1, b, i or o)`);
  }
  if (text.length !== LINK_CODE_CHARS) {
    throw new CryptoError(`a link code has ${LINK_CODE_CHARS} characters; this one has ${text.length}: one is missing or extra`);
  }
  const values = [...text].map((c) => ALPHABET.indexOf(c));
  if (polymod([...expandedHrp(), ...values]) !== BECH32M) {
    throw new CryptoError("the link code has a typo: its check characters do not match (compare it with the patient's once more)");
  }
  const data = values.slice(0, DATA_CHARS);
  if (((data[DATA_CHARS - 1] as number) & 0b1111) !== 0) throw new CryptoError("this is not a link code of a pseudonym");
  const out = bytes(32);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const value of data) {
    acc = (acc << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  return toHex(out);
}

/** The app's link to a patient: the code rides in the fragment, which is never sent. */
export function linkCodeUrl(appUrl: string, pseudonym: string): string {
  return `${appUrl}#/patient/${linkCode(pseudonym)}`;
}
