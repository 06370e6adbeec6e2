// What the witness policy keeps in this browser (localStorage, this origin: the gateway that
// serves the app). All of it is public: the policy (witness vkeys, k, wait), the log's
// checkpoint key and the largest witnessed checkpoint seen (so a fork shown in a later
// session is still caught), and the evidence of every split view found, until deleted.
import { type PolicySettings, WitnessPolicy } from "./policy.js";

const POLICY = "ehrgate.witness-policy";
const WITNESSED = "ehrgate.witnessed-checkpoint";
const EVIDENCE = "ehrgate.split-view-evidence";

/** The SDK's evidence file (ehrgate/evidence.py), as kept here. */
export interface Evidence {
  readonly kind: "split-view";
  readonly gateway: string;
  readonly found_at: string;
  readonly reason: string;
  readonly views: ReadonlyArray<{ readonly what: string; readonly signed: unknown }>;
}

export interface Witnessed {
  readonly checkpoint_key: string;
  readonly note: string;
}

function read<T>(name: string): T | null {
  const text = localStorage.getItem(name);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

export function loadPolicy(): WitnessPolicy | null {
  const settings = read<PolicySettings>(POLICY);
  return settings === null ? null : WitnessPolicy.of(settings);
}

export function savePolicy(policy: WitnessPolicy | null): void {
  if (policy === null) localStorage.removeItem(POLICY);
  else localStorage.setItem(POLICY, JSON.stringify(policy.settings()));
}

export function loadWitnessed(): Witnessed | null {
  return read<Witnessed>(WITNESSED);
}

export function saveWitnessed(value: Witnessed): void {
  localStorage.setItem(WITNESSED, JSON.stringify(value));
}

export function evidenceList(): Evidence[] {
  return read<Evidence[]>(EVIDENCE) ?? [];
}

export function keepEvidence(evidence: Evidence): void {
  localStorage.setItem(EVIDENCE, JSON.stringify([...evidenceList(), evidence]));
}

export function deleteEvidence(index: number): void {
  const list = evidenceList();
  list.splice(index, 1);
  localStorage.setItem(EVIDENCE, JSON.stringify(list));
}
