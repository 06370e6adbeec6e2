// Patient view: own records by category, grants (signed here), revoke, key shares, and the
// audit timeline with denials marked.
import { CryptoError, checkScope, linkCode, linkCodeUrl, nextPeriod, fromBase64, grantMonths, months, sealScopedShare, toBase64 } from "../../crypto/index.js";
import { getJson, postJson } from "../api.js";
import { MONTHS_AHEAD, type CategoryKeys, ledgerCategories, publishKeys, publishedStatus } from "../scopedkeys.js";
import { field, h, localTime, mount, showStatus, table } from "../dom.js";
import { explain, listRecords } from "../records.js";
import { ledgerTime, newId, session, signTransaction } from "../session.js";
import { recordsByCategory } from "./records.js";

export const CATEGORIES = ["history-physical", "lab-results", "radiation-dose", "treatment-summary"];

interface Permission {
  permission_id: string;
  grantee: string;
  rights: string[];
  categories: string[] | string;
  not_before: string;
  not_after: string;
  revoked: boolean;
}

interface AuditEvent {
  entry_index: number;
  actor: string;
  action: string;
  record_id: string | null;
  category: string | null;
  decision: string;
  reason: string;
  at: string;
}

function toLocalInput(when: Date): string {
  const local = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function pseudonym(): string {
  return session().keys.pseudonym as string;
}

/**
 * Share with `grantee` the keys of exactly what its read permissions cover (their categories
 * x every month from each one's not_before to its not_after), never K: the seeds sealed to
 * its enrolled key, deposited as a signed key_share with its scope (SDK `share_key`).
 */
async function shareKeyWith(grantee: string): Promise<number> {
  const keys = session().keys;
  const now = Date.now();
  const { permissions } = await getJson<{ permissions: Permission[] }>(`/v1/patients/${pseudonym()}/permissions`);
  const grants = permissions.filter((p) => p.grantee === grantee && !p.revoked && p.rights.includes("read") && new Date(p.not_after).getTime() > now);
  if (grants.length === 0) throw new CryptoError(`${grantee} has no read permission that has not ended`);
  const all = grants.some((p) => p.categories === "all") ? await ledgerCategories() : [];
  const scope: [string, string][] = [];
  for (const p of grants) {
    const [first, last] = grantMonths(p.not_before, p.not_after);
    for (const category of Array.isArray(p.categories) ? p.categories : all) {
      for (const month of months(first, last)) scope.push([category, month]);
    }
  }
  const items = checkScope(scope);
  const identity = await getJson<{ encryption_public_key: string }>(`/v1/identities/${encodeURIComponent(grantee)}`);
  const sealed = await sealScopedShare(keys.patientKey!, pseudonym(), grantee, fromBase64(identity.encryption_public_key), items);
  const tx = signTransaction("key_share", {
    pseudonym: pseudonym(), grantee, sealed_key: toBase64(sealed), scope: items.map(([c, m]) => `${c}/${m}`),
  });
  await postJson("/v1/key-shares", tx);
  return items.length;
}

interface AccessRequest {
  request_id: string;
  requester: string;
  rights: string[];
  categories: string[] | string;
  reason: string;
}

type Prefill = (grantee: string, categories: string[], requestId?: string) => void;

async function answerRequest(requestId: string, decision: "approved" | "declined", permissionId?: string): Promise<void> {
  const fields: Record<string, unknown> = { pseudonym: pseudonym(), request_id: requestId, decision };
  if (permissionId !== undefined) fields.permission_id = permissionId;
  await postJson(`/v1/access-requests/${encodeURIComponent(requestId)}/answer`, signTransaction("answer_request", fields));
}

function requestsList(requests: AccessRequest[], prefill: Prefill, refresh: () => Promise<void>): HTMLElement {
  if (requests.length === 0) return h("p", {}, "No open requests.");
  return table(["Who", "Rights", "Categories", "Why", ""], requests.map((r) => {
    const categories = Array.isArray(r.categories) ? r.categories : CATEGORIES;
    const decline = async (): Promise<void> => {
      try {
        await answerRequest(r.request_id, "declined");
        showStatus("ok", `Declined ${r.requester}'s request; the answer is on the ledger.`);
        await refresh();
      } catch (error) {
        showStatus("error", `The request was not declined. ${explain(error)}`);
      }
    };
    return [r.requester, r.rights.join(", "), categories.join(", "), r.reason,
      h("span", {},
        h("button", { type: "button", class: "secondary", "aria-label": `Approve ${r.requester}'s request: fill in the grant`,
          onclick: () => prefill(r.requester, categories, r.request_id) }, "Approve"),
        " ",
        h("button", { type: "button", class: "secondary", "aria-label": `Decline ${r.requester}'s request`,
          onclick: () => { void decline(); } }, "Decline"))];
  }), "Access requests");
}

function grantForm(refresh: () => Promise<void>): { form: HTMLElement; prefill: Prefill } {
  let answering: { requestId: string; grantee: string } | null = null;
  const grantee = h("input", { type: "text", autocomplete: "off", required: true });
  const boxes = CATEGORIES.map((name) => h("input", { type: "checkbox", value: name, name: "category" }));
  const from = h("input", { type: "datetime-local", required: true, value: toLocalInput(new Date()) });
  const until = h("input", { type: "datetime-local", required: true, value: toLocalInput(new Date(Date.now() + 7 * 86400000)) });
  const share = h("input", { type: "checkbox", checked: true, id: "share-key" });
  const form = h("form", { "aria-labelledby": "grant-title" },
    h("h2", { id: "grant-title" }, "Grant read access"),
    field("Who (identity id, e.g. dr-house)", grantee),
    h("fieldset", {}, h("legend", {}, "Categories"),
      ...boxes.map((box) => h("label", {}, box, box.value))),
    field("From", from),
    field("Until (not included)", until),
    h("div", {}, h("label", {}, share, " Also share the keys of these categories and months, sealed to their key (needed to read)")),
    h("button", { type: "submit" }, "Grant"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const categories = boxes.filter((b) => b.checked).map((b) => b.value).sort();
    if (grantee.value.trim() === "" || categories.length === 0) {
      showStatus("error", "Name who may read and pick at least one category.");
      return;
    }
    const start = new Date(from.value);
    const end = new Date(until.value);
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start) {
      showStatus("error", "Until must be after From.");
      return;
    }
    void (async () => {
      try {
        const who = grantee.value.trim();
        const permissionId = newId();
        const tx = signTransaction("grant", {
          permission_id: permissionId, pseudonym: pseudonym(), grantee: who, rights: ["read"], categories,
          not_before: ledgerTime(start), not_after: ledgerTime(end),
        });
        await postJson("/v1/permissions", tx);
        const request = answering !== null && answering.grantee === who ? answering : null;
        answering = null;
        if (request !== null) await answerRequest(request.requestId, "approved", permissionId);
        const shared = share.checked ? await shareKeyWith(who).catch((error: unknown) => {
          showStatus("error", `Granted ${who} read access, but the keys were not shared. ${explain(error)}`);
          return null;
        }) : 0;
        if (shared !== null) {
          const keysNote = shared > 0 ? ` and shared the ${shared} month keys it covers` : "";
          showStatus("ok", `Granted ${who} read access to ${categories.join(", ")} until ${end.toLocaleString()}${keysNote}.`);
        }
        await refresh();
      } catch (error) {
        showStatus("error", `The grant was not made. ${explain(error)}`);
      }
    })();
  });
  const prefill: Prefill = (who, categories, requestId) => {
    answering = requestId !== undefined ? { requestId, grantee: who } : null;
    grantee.value = who;
    for (const box of boxes) box.checked = categories.includes(box.value);
    showStatus("info", `Grant prefilled for ${who}: check the dates, then Grant.`);
    until.focus();
  };
  return { form, prefill };
}

function permissionsTable(permissions: Permission[], refresh: () => Promise<void>): HTMLElement {
  if (permissions.length === 0) return h("p", {}, "You have granted nothing.");
  const now = Date.now();
  const rows = permissions.map((p) => {
    const ended = p.revoked || new Date(p.not_after).getTime() <= now;
    const state = p.revoked ? "revoked" : ended ? "expired" : "active";
    const revoke = h("button", {
      type: "button", class: "secondary", disabled: ended, "aria-label": `Revoke ${p.grantee}'s access`,
      onclick: () => void (async () => {
        try {
          await postJson(`/v1/permissions/${p.permission_id}/revoke`,
            signTransaction("revoke", { pseudonym: pseudonym(), permission_id: p.permission_id }));
          showStatus("ok", `Revoked ${p.grantee}'s access.`);
          await refresh();
        } catch (error) {
          showStatus("error", explain(error));
        }
      })(),
    }, "Revoke");
    const categories = Array.isArray(p.categories) ? p.categories.join(", ") : p.categories;
    return [p.grantee, p.rights.join(", "), categories, localTime(p.not_before), localTime(p.not_after), state, revoke];
  });
  return table(["Who", "Rights", "Categories", "From", "Until", "State", ""], rows, "Your grants");
}

function auditTimeline(events: AuditEvent[]): HTMLElement {
  if (events.length === 0) return h("p", {}, "Nobody has accessed your records yet.");
  const items = [...events].reverse().map((event) => {
    const denied = event.decision !== "allowed";
    return h("li", { class: denied ? "denied-event" : "allowed-event" },
      h("span", { class: denied ? "denied" : "allowed" }, denied ? "DENIED " : "allowed "),
      `${localTime(event.at)}: ${event.actor === pseudonym() ? "you" : event.actor} ${event.action}${event.category ? ` (${event.category})` : ""}`,
      event.reason ? ` — ${event.reason}` : "");
  });
  return h("ol", { reversed: true, "aria-label": "Access history, newest first" }, ...items);
}

/** Months as runs: "2027-01 to 2028-11, 2029-02". */
function monthRuns(periods: string[]): string {
  const runs: [string, string][] = [];
  for (const period of periods) {
    const last = runs[runs.length - 1];
    if (last !== undefined && nextPeriod(last[1]) === period) last[1] = period;
    else runs.push([period, period]);
  }
  return runs.map(([from, to]) => (from === to ? from : `${from} to ${to}`)).join(", ");
}

function keysTable(status: CategoryKeys[]): HTMLElement {
  const rows = status.map((c) => {
    const through = c.ahead.length > 0 ? c.ahead[c.ahead.length - 1] as string : "none";
    const state = c.missing.length === 0 ? "all published"
      : c.missing.length > MONTHS_AHEAD ? "NOT PUBLISHED: nobody can upload to this category"
      : `missing ${monthRuns(c.missing)} (${c.missing.length} months)`;
    return [c.category, `${c.ahead.length} months`, through, state];
  });
  return table(["Category", "Published", "Through", `This month and the next ${MONTHS_AHEAD}`], rows, "Published record keys");
}

/**
 * Record keys: which months each category's public key is published for (uploads to a
 * month without one are refused), and "Publish keys again" for this month and the next 24.
 */
function keysSection(): HTMLElement {
  const status = h("div", { id: "keys-status" });
  const show = async (): Promise<CategoryKeys[]> => {
    const now = await publishedStatus(pseudonym());
    status.replaceChildren(keysTable(now));
    return now;
  };
  const button = h("button", { type: "button", class: "secondary", onclick: () => void (async () => {
    button.disabled = true;
    try {
      showStatus("info", "Publishing record keys: deriving them from your key and signing on this device…");
      const count = await publishKeys();
      const now = await show();
      const through = now.map((c) => c.ahead[c.ahead.length - 1] ?? "none").sort()[0];
      showStatus("ok", count > 0
        ? `Published ${count} record keys; every category now has keys through ${through}.`
        : `Nothing to publish: every category already has keys through ${through}.`);
    } catch (error) {
      showStatus("error", `The keys were not published. ${explain(error)}`);
    } finally {
      button.disabled = false;
    }
  })() }, "Publish keys again");
  void show().catch((error: unknown) => showStatus("error", explain(error)));
  return h("section", { "aria-labelledby": "keys-title" },
    h("h2", { id: "keys-title" }, "My record keys"),
    h("p", {}, `Clinicians seal documents to the public key you published for the document's category and month. Publish again from time to time, so that the coming ${MONTHS_AHEAD} months always have keys.`),
    button, status);
}

/** The pseudonym as a link code and a link, to hand to a clinician (typos are detected). */
function linkSection(): HTMLElement {
  const app = `${location.origin}${location.pathname}`;
  return h("section", { "aria-labelledby": "link-title" },
    h("h2", { id: "link-title" }, "Give a clinician your link code"),
    h("p", {}, "It is your pseudonym written so that typing mistakes are caught; it tells nobody anything your pseudonym does not."),
    h("p", {}, "Link code: ", h("code", { id: "link-code" }, linkCode(pseudonym()))),
    h("p", {}, "Link: ", h("code", { id: "link-url" }, linkCodeUrl(app, pseudonym()))));
}

export function patientView(): void {
  const records = h("div", { id: "records" });
  const document = h("div", { id: "document" });
  const grants = h("div", { id: "grants" });
  const audit = h("div", { id: "audit" });
  const requests = h("div", { id: "requests" });
  const refresh = async (): Promise<void> => {
    try {
      const p = pseudonym();
      const [list, permissions, log, asked] = await Promise.all([
        listRecords(p),
        getJson<{ permissions: Permission[] }>(`/v1/patients/${p}/permissions`),
        getJson<{ events: AuditEvent[] }>(`/v1/patients/${p}/audit`),
        getJson<{ access_requests: AccessRequest[] }>(`/v1/patients/${p}/access-requests?pending=true`),
      ]);
      requests.replaceChildren(requestsList(asked.access_requests, grant.prefill, refresh));
      records.replaceChildren(recordsByCategory(list, document));
      grants.replaceChildren(permissionsTable(permissions.permissions, refresh));
      audit.replaceChildren(auditTimeline(log.events));
    } catch (error) {
      showStatus("error", explain(error));
    }
  };
  const grant = grantForm(refresh);
  mount(
    h("section", { "aria-labelledby": "mine" }, h("h2", { id: "mine" }, "My records"),
      h("p", {}, `Pseudonym ${pseudonym()}`), records),
    document,
    h("section", { "aria-labelledby": "requests-title" }, h("h2", { id: "requests-title" }, "Access requests"), requests),

    h("section", {}, grant.form),
    h("section", { "aria-labelledby": "grants-title" }, h("h2", { id: "grants-title" }, "My grants"), grants),
    h("section", { "aria-labelledby": "audit-title" }, h("h2", { id: "audit-title" }, "Who accessed my records"),
      h("button", { type: "button", class: "secondary", onclick: () => void refresh() }, "Refresh"), audit),
    linkSection(),
    keysSection(),
  );
  void refresh();
}
