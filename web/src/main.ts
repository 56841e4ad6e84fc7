// kiln ui: a single-page app over `kiln ui`'s JSON API. Hash routes (docs/ui.md):
//   #/runs  #/runs/PIPELINE/RUN  #/data  #/data/ID  #/training  #/models  #/lineage/ID
// A view draws itself from the API; while something it shows is running, it is drawn
// again every 2 s, keeping the focused control and scroll positions.

import "./style.css";
import { getJSON, type Summary } from "./api";
import type { App, Route, View } from "./app";
import { h, num } from "./dom";
import { DataView } from "./views/data";
import { LineageView } from "./views/lineage";
import { ModelsView } from "./views/models";
import { RunsView, RunView } from "./views/runs";
import { TrainingView } from "./views/training";

const POLL_MS = 2000;

function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [path, q] = raw.split("?", 2);
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { parts, query: new URLSearchParams(q ?? "") };
}

function viewFor(route: Route, app: App): View | null {
  const [name, ...rest] = route.parts;
  switch (name) {
    case "runs":
      if (rest.length === 0) return new RunsView(route.query.get("pipeline"));
      if (rest.length === 2) return new RunView(rest[0], rest[1], app);
      return null;
    case "data":
      if (rest.length === 0) return new DataView(null, route.query);
      if (rest.length === 1 && /^\d+$/.test(rest[0])) return new DataView(Number(rest[0]), route.query);
      return null;
    case "training":
      return rest.length === 0 ? new TrainingView(route.query, app) : null;
    case "models":
      return rest.length === 0 ? new ModelsView(route.query, app) : null;
    case "lineage":
      return rest.length === 1 && /^\d+$/.test(rest[0]) ? new LineageView(Number(rest[0]), route.query) : null;
    default:
      return null;
  }
}

/** What identifies a focusable element across redraws of a view. */
function keyOf(el: Element): string | null {
  const e = el as HTMLElement;
  if (e.dataset.key) return `k:${e.dataset.key}`;
  if (e.dataset.testid) return `t:${e.dataset.testid}`;
  if (e.tagName === "H1") return "h1";
  const href = e.getAttribute("href");
  return href ? `h:${href}|${e.textContent}` : null;
}

class Shell implements App {
  private view: View | null = null;
  private viewHash = "";
  private generation = 0;
  private timer: number | undefined;
  private readonly main = document.getElementById("main")!;

  start(): void {
    window.addEventListener("hashchange", () => this.navigate());
    document.getElementById("skip-link")!.addEventListener("click", () => this.main.focus());
    this.navigate();
  }

  private navigate(): void {
    if (!location.hash.startsWith("#/") || parseHash(location.hash).parts.length === 0) {
      history.replaceState(null, "", "#/runs");
    }
    const route = parseHash(location.hash);
    for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a[data-nav]")) {
      if (a.dataset.nav === route.parts[0]) {
        a.setAttribute("aria-current", "page");
      } else {
        a.removeAttribute("aria-current");
      }
    }
    this.view = viewFor(route, this);
    this.viewHash = location.hash;
    delete this.main.dataset.ready;
    this.main.replaceChildren(h("p", { class: "loading", "data-testid": "loading" }, "Loading…"));
    void this.draw(true);
  }

  refresh(): void {
    void this.draw(false);
  }

  private async draw(navigated: boolean): Promise<void> {
    window.clearTimeout(this.timer);
    const gen = ++this.generation;
    const view = this.view;
    void this.summary();
    let node: Node;
    let live = false;
    if (!view) {
      node = h("div", { class: "view" }, h("h1", { tabindex: -1 }, "Not found"),
        h("p", {}, "No view at ", h("code", {}, location.hash), ". Try ", h("a", { href: "#/runs" }, "Runs"), "."));
    } else {
      try {
        const r = await view.render();
        node = r.node;
        live = r.live;
        document.title = `${view.title()} · kiln`;
      } catch (e) {
        node = h("div", { class: "view" }, h("h1", { tabindex: -1 }, view.title()),
          h("p", { class: "bad", role: "alert", "data-testid": "error" }, `Could not load: ${(e as Error).message}`));
        // A server restarting: keep trying while the view was live.
        live = this.main.dataset.live === "true";
      }
    }
    if (gen !== this.generation) return;
    this.swap(node, navigated);
    this.main.dataset.live = String(live);
    // For tests: the view of this hash has drawn itself (`gen` counts the draws).
    this.main.dataset.ready = this.viewHash;
    this.main.dataset.draws = String(gen);
    if (live) this.timer = window.setTimeout(() => this.refresh(), POLL_MS);
  }

  /** Replaces the view's DOM, keeping the focused element and scroll positions. */
  private swap(node: Node, navigated: boolean): void {
    const active = document.activeElement as HTMLElement | null;
    const focusKey = active && this.main.contains(active) ? keyOf(active) : null;
    const scrolls = new Map<string, { top: number; atEnd: boolean }>();
    for (const el of this.main.querySelectorAll<HTMLElement>("[data-key]")) {
      scrolls.set(el.dataset.key!, { top: el.scrollTop, atEnd: el.scrollTop + el.clientHeight >= el.scrollHeight - 4 });
    }
    this.main.replaceChildren(node);
    for (const el of this.main.querySelectorAll<HTMLElement>("pre.log")) {
      const prev = el.dataset.key ? scrolls.get(el.dataset.key) : undefined;
      el.scrollTop = !prev || prev.atEnd ? el.scrollHeight : prev.top;
    }
    if (focusKey) {
      const el = [...this.main.querySelectorAll<HTMLElement>("a, button, input, select, [tabindex], h1")].find((e) => keyOf(e) === focusKey);
      el?.focus({ preventScroll: true });
    } else if (navigated) {
      this.main.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  }

  private async summary(): Promise<void> {
    const el = document.getElementById("summary")!;
    try {
      const s = await getJSON<Summary>("summary");
      el.replaceChildren(
        h("span", { class: "store", title: s.store }, s.store), " · ",
        num(s.runs, "summary-runs"), " runs · ", num(s.models, "summary-models"), " models · ",
        num(s.artifacts, "summary-artifacts"), " artifacts",
      );
    } catch (e) {
      el.replaceChildren(h("span", { class: "bad" }, `API unreachable: ${(e as Error).message}`));
    }
  }
}

new Shell().start();
