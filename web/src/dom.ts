// Small DOM helpers: element builders for HTML and SVG, number formatting, and the
// numbers the page shows (each carries its exact value in data-value for the tests).

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

function apply(el: Element, attrs: Attrs | undefined, children: Child[]): void {
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (typeof v === "function") {
        el.addEventListener(k.replace(/^on/, ""), v);
      } else if (v === true) {
        el.setAttribute(k, "");
      } else {
        el.setAttribute(k, String(v));
      }
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s(tag: string, attrs?: Attrs, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag) as SVGElement;
  apply(el, attrs, children);
  return el;
}

/** A number for people: integers grouped, others to `digits` significant digits. */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "-∞";
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

export function fmtSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtTime(ms: number | null | undefined): string {
  if (!ms) return "–";
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(
    d.getMinutes(),
  )}:${p(d.getSeconds())}`;
}

/** A shown number: its text formatted, its exact value in data-value. */
export function num(
  v: number | null | undefined,
  testid?: string,
  opts: { digits?: number; suffix?: string; title?: string } = {},
): HTMLSpanElement {
  const text = fmt(v, opts.digits ?? 4) + (opts.suffix ?? "");
  return h(
    "span",
    {
      class: "num",
      "data-testid": testid,
      "data-value": v === null || v === undefined ? "" : String(v),
      title: opts.title ?? (v === null || v === undefined ? undefined : String(v)),
    },
    text,
  );
}

/** A value of a property map: numbers as `num`, the rest as text. */
export function value(v: unknown, testid?: string): Node {
  if (typeof v === "number") return num(v, testid);
  if (typeof v === "boolean") {
    return h("span", { "data-testid": testid, "data-value": String(v) }, v ? "yes" : "no");
  }
  if (v === null || v === undefined) return h("span", { "data-testid": testid }, "–");
  const text = typeof v === "string" ? v : JSON.stringify(v);
  return h("span", { "data-testid": testid, "data-value": text }, text);
}

export function badge(state: string, testid?: string): HTMLSpanElement {
  return h("span", { class: `badge st-${cssIdent(state)}`, "data-testid": testid }, state);
}

export function cssIdent(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9_-]/g, "-");
}

/** A data-testid part from free text (feature names, slices, tags). */
export function tid(s: string | number): string {
  return String(s).replace(/[^A-Za-z0-9_.-]/g, "_");
}

export function link(href: string, text: Child, attrs: Attrs = {}): HTMLAnchorElement {
  return h("a", { href, ...attrs }, text);
}

export function lineageLink(id: number, text?: string, testid?: string): HTMLAnchorElement {
  return link(`#/lineage/${id}`, text ?? `#${id}`, {
    "data-testid": testid,
    title: `lineage of artifact ${id}`,
  });
}

export function section(title: string, ...children: Child[]): HTMLElement {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

export function empty(text: string): HTMLParagraphElement {
  return h("p", { class: "empty" }, text);
}

/** The last part of a path, for showing long artifact URIs. */
export function basename(path: string): string {
  const parts = path.split("/").filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}

/** Flattens nested objects into dotted keys: {"a": {"b": 1}} -> {"a.b": 1}. */
export function flatten(o: Record<string, unknown>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o ?? {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) {
      Object.assign(out, flatten(v as Record<string, unknown>, key));
    } else {
      out[key] = v;
    }
  }
  return out;
}
