// Small DOM helpers: elements built with properties and children, no inline HTML.
type Child = Node | string | null | undefined | false;
type Props = Record<string, string | boolean | number | ((event: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

let fieldCounter = 0;

/** A labelled form field: the label names the control for screen readers. */
export function field(labelText: string, control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement): HTMLElement {
  fieldCounter += 1;
  if (control.id === "") control.id = `field-${fieldCounter}`;
  return h("div", {}, h("label", { for: control.id }, labelText), control);
}

export function message(kind: "error" | "ok" | "info", text: string): HTMLElement {
  return h("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

export function showStatus(kind: "error" | "ok" | "info", text: string): void {
  const status = document.getElementById("status") as HTMLElement;
  status.replaceChildren(message(kind, text));
}

export function clearStatus(): void {
  (document.getElementById("status") as HTMLElement).replaceChildren();
}

export function mount(...nodes: Node[]): void {
  const main = document.getElementById("main") as HTMLElement;
  main.replaceChildren(...nodes);
}

export function localTime(text: string): string {
  const when = new Date(text);
  return Number.isNaN(when.getTime()) ? text : when.toLocaleString();
}

export function table(headers: string[], rows: Array<Array<Node | string>>, caption: string): HTMLElement {
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, ...headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((cell) => h("td", {}, cell)))))));
}

export interface ProgressBar {
  readonly element: HTMLElement;
  /** Show `done` of `total` bytes, with what is happening. */
  set(what: string, done: number, total: number): void;
  hide(): void;
}

/** A progress bar in bytes, with its figures in words beside it for screen readers too. */
export function progressBar(label: string, id: string): ProgressBar {
  const bar = h("progress", { id, max: "1", value: "0", "aria-label": label });
  const words = h("span", { class: "progress-words" });
  const element = h("div", { class: "progress", hidden: true }, bar, words);
  let shown = 0;
  return {
    element,
    set(what, done, total) {
      // at most about twenty redraws a second while bytes stream in; the first and the last always
      const now = performance.now();
      if (done > 0 && done < total && !element.hidden && now - shown < 50) return;
      shown = now;
      element.hidden = false;
      bar.max = Math.max(total, 1);
      bar.value = Math.min(done, bar.max);
      const share = total > 0 ? Math.floor((100 * done) / total) : 100;
      words.textContent = `${what}: ${done.toLocaleString()} of ${total.toLocaleString()} bytes (${share} %)`;
    },
    hide() {
      element.hidden = true;
    },
  };
}
