// The reader's witness policy (issue 17): which witnesses it trusts and how many of them (k
// of n) must cosign a checkpoint before a tree head under it is believed. The same rules as
// the SDK's ehrgate/witness_policy.py: at least one witness, each named once, 1 ≤ k ≤ n and
// 2k − n ≥ 1 (two quorums share a witness), wait_seconds between 0 and 3600. The policy can
// be typed as vkeys, one a line, or pasted as the SDK's policy.toml (its [witnesses] table).
import { ALG_COSIGNATURE_V1, MalformedNote, NoteVerifier, Verifiers } from "../../crypto/checkpoint.js";

export const DEFAULT_WAIT = 10;

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyError";
  }
}

/** What is stored: the vkeys as given, the quorum and how long a read waits for the witnesses. */
export interface PolicySettings {
  readonly quorum: number;
  readonly witnesses: readonly string[];
  readonly wait_seconds: number;
}

export class WitnessPolicy {
  readonly verifiers: Verifiers;

  private constructor(readonly quorum: number, readonly witnesses: readonly NoteVerifier[], readonly waitSeconds: number) {
    this.verifiers = new Verifiers(witnesses);
  }

  static of(settings: PolicySettings): WitnessPolicy {
    const witnesses: NoteVerifier[] = [];
    for (const vkey of settings.witnesses) {
      try {
        witnesses.push(NoteVerifier.fromVkey(vkey, ALG_COSIGNATURE_V1));
      } catch (error) {
        if (error instanceof MalformedNote) throw new PolicyError(`not a witness vkey: ${JSON.stringify(vkey.slice(0, 80))} (${error.message})`);
        throw error;
      }
    }
    const count = witnesses.length;
    if (count === 0) throw new PolicyError("a witness policy needs at least one witness key");
    if (new Set(witnesses.map((w) => w.name)).size !== count) throw new PolicyError("a witness policy names each witness once");
    const { quorum } = settings;
    if (!Number.isSafeInteger(quorum) || quorum < 1 || quorum > count) throw new PolicyError(`the quorum must be between 1 and ${count} (the witnesses given)`);
    if (2 * quorum - count < 1) {
      throw new PolicyError(`a quorum of ${quorum} of ${count} witnesses lets two disjoint sets of witnesses cosign two forks: it needs 2k − n ≥ 1 (more than half)`);
    }
    const wait = settings.wait_seconds;
    if (typeof wait !== "number" || !Number.isFinite(wait) || wait < 0 || wait > 3600) throw new PolicyError("wait_seconds must be between 0 and 3600");
    return new WitnessPolicy(quorum, witnesses, wait);
  }

  get names(): string[] {
    return this.witnesses.map((w) => w.name);
  }

  settings(): PolicySettings {
    return { quorum: this.quorum, witnesses: this.witnesses.map((w) => w.vkey()), wait_seconds: this.waitSeconds };
  }
}

function tomlNumber(value: string, what: string): number {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value)) throw new PolicyError(`${what} must be a number, got ${value}`);
  return Number(value);
}

/**
 * A policy from text: the SDK's policy.toml ([witnesses] with quorum, wait_seconds,
 * evidence_dir (the browser keeps evidence itself) and [[witnesses.keys]] vkey = "…"), or
 * bare vkeys one a line. `quorum` and `wait` apply when the text does not set them.
 */
export function parsePolicyText(text: string, quorum: number | null, wait: number | null): PolicySettings {
  const vkeys: string[] = [];
  let k = quorum;
  let seconds = wait;
  for (const [number, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/\s+#[^"]*$/, "").trim();
    if (line === "" || line.startsWith("#") || line === "[witnesses]" || line === "[[witnesses.keys]]") continue;
    const setting = /^([a-z_]+)\s*=\s*(.+)$/.exec(line);
    if (setting === null) {
      vkeys.push(line);
      continue;
    }
    const [, name, value] = setting as unknown as [string, string, string];
    if (name === "quorum") k = tomlNumber(value, "quorum");
    else if (name === "wait_seconds") seconds = tomlNumber(value, "wait_seconds");
    else if (name === "vkey") {
      const quoted = /^"([^"\\]*)"$/.exec(value);
      if (quoted === null) throw new PolicyError(`line ${number + 1}: vkey = "…" must be a quoted string`);
      vkeys.push(quoted[1] as string);
    } else if (name !== "evidence_dir") throw new PolicyError(`line ${number + 1}: unknown [witnesses] setting ${name}`);
  }
  if (k === null) throw new PolicyError("give the quorum (k)");
  return { quorum: k, witnesses: vkeys, wait_seconds: seconds ?? DEFAULT_WAIT };
}
