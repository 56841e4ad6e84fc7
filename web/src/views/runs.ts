// Runs: the pipeline runs, newest first; one run's DAG coloured by state, durations, and
// a component's outputs and log.

import { enc, getJSON, getText, type Artifact, type Component, type Run, type RunListEntry } from "../api";
import { hashOf, type App, type Rendered, type View } from "../app";
import { arrowMarker, fitWidth, hbars, layered, legend, routePath, type GraphNode } from "../charts";
import { badge, cssIdent, empty, fmtSeconds, fmtTime, h, lineageLink, link, num, s, section, tid } from "../dom";

/** Component states in the order the legend shows them, with their colours. */
export const STATE_COLORS: Record<string, string> = {
  running: "#2563eb",
  ran: "#16a34a",
  cached: "#0e7490",
  failed: "#dc2626",
  held: "#d97706",
  skipped: "#9ca3af",
  pending: "#e5e7eb",
  canceled: "#6b7280",
};

/**
 * The state to show for a component. run.json is rewritten as each component finishes,
 * so while the run goes on a started component is still `pending` there: one whose
 * upstream components have all finished is shown as running.
 */
export function shownState(c: Component, run: Run, byName: Map<string, Component>): string {
  if (c.state !== "pending" || run.state !== "running" || c.upstream === undefined) return c.state;
  const done = c.upstream.every((u) => ["ran", "cached"].includes(byName.get(u)?.state ?? ""));
  return done ? "running" : "pending";
}

function stateColor(state: string): string {
  return STATE_COLORS[state] ?? "#a8a29e";
}

function stateBar(counts: Record<string, number>, testid: string): SVGElement {
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
  const W = 160;
  const svg = s("svg", {
    "data-testid": testid,
    class: "chart statebar",
    viewBox: `0 0 ${W} 12`,
    width: W,
    height: 12,
    role: "img",
    "aria-label": Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", "),
  });
  let x = 0;
  const keys = Object.keys(STATE_COLORS).filter((k) => counts[k]);
  for (const k of Object.keys(counts)) if (!keys.includes(k)) keys.push(k);
  for (const k of keys) {
    const w = (counts[k] / total) * W;
    svg.append(s("rect", { x, y: 0, width: w, height: 12, fill: stateColor(k) }, s("title", {}, `${counts[k]} ${k}`)));
    x += w;
  }
  return svg;
}

export class RunsView implements View {
  constructor(private readonly pipeline: string | null) {}

  title(): string {
    return "Runs";
  }

  async render(): Promise<Rendered> {
    const runs = await getJSON<RunListEntry[]>(this.pipeline ? `runs?pipeline=${enc(this.pipeline)}` : "runs");
    const root = h("div", { class: "view view-runs" });
    root.append(h("h1", { tabindex: -1 }, this.pipeline ? `Runs of ${this.pipeline}` : "Runs"));
    if (!runs.length) {
      root.append(empty("No pipeline runs in this store yet: `kiln run pipeline.yaml` records them."));
      return { node: root, live: true };
    }
    const pipelines = [...new Set(runs.map((r) => r.pipeline))];
    if (pipelines.length > 1 || this.pipeline) {
      root.append(
        h("p", { class: "filters" }, "Pipeline: ",
          link("#/runs", "all", { "aria-current": this.pipeline ? undefined : "true" }),
          ...pipelines.flatMap((p) => [" · ", link(hashOf(["runs"], { pipeline: p }), p, { "aria-current": this.pipeline === p ? "true" : undefined })])),
      );
    }
    const table = h("table", { class: "grid runs", "data-testid": "runs-table" },
      h("thead", {}, h("tr", {}, ...["pipeline", "run", "state", "started", "duration", "components", ""].map((c) => h("th", { scope: "col" }, c)))));
    const tbody = h("tbody");
    for (const r of runs) {
      const key = `${r.pipeline}/${r.run_id}`;
      const counts = r.components ?? {};
      tbody.append(
        h("tr", { "data-testid": `run-row-${tid(r.run_id)}`, class: r.state === "running" ? "is-running" : undefined },
          h("td", {}, r.pipeline),
          h("td", {}, link(hashOf(["runs", r.pipeline, r.run_id]), r.run_id, { "data-testid": `run-link-${tid(r.run_id)}`, "data-key": `run:${key}` })),
          h("td", {}, badge(r.state, `run-state-${tid(r.run_id)}`)),
          h("td", {}, fmtTime(r.started_ms)),
          h("td", {}, r.seconds === null || r.seconds === undefined ? "–" : num(r.seconds, `run-seconds-${tid(r.run_id)}`, { suffix: " s" })),
          h("td", { class: "counts" }, Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")),
          h("td", {}, stateBar(counts, `run-bar-${tid(r.run_id)}`)),
        ),
      );
    }
    table.append(tbody);
    root.append(section("Pipeline runs", table, legend(Object.entries(STATE_COLORS).map(([name, color]) => ({ name, color })), "state-legend")));
    // The newest run at a glance.
    const latest = runs[0];
    try {
      const run = await getJSON<Run>(`runs/${enc(latest.pipeline)}/${enc(latest.run_id)}`);
      const byName = new Map(run.components.map((c) => [c.name, c]));
      const comps = run.components.map((c) => ({ ...c, state: shownState(c, run, byName) }));
      root.append(section(`Latest run: ${latest.pipeline} / ${latest.run_id}`,
        h("p", { class: "facts" }, badge(run.state), " ", link(hashOf(["runs", latest.pipeline, latest.run_id]), "open the run", { "data-testid": "latest-run-link" })),
        dagChart(comps, { testid: "latest-dag" })));
    } catch {
      // its run.json is gone (a deleted run directory): the table says enough
    }
    // New runs appear without a reload: the list is always polled.
    return { node: root, live: true };
  }
}

const NODE_W = 124;
const NODE_H = 50;

/**
 * A run's components as a DAG coloured by state. With `onSelect`, every node is a button
 * (focusable, Enter or Space selects it); without, the chart is a picture.
 */
export function dagChart(
  comps: Component[],
  opts: { selected?: string | null; onSelect?: (name: string) => void; testid?: string },
): HTMLElement {
  const nodes: GraphNode[] = comps.map((c) => ({ id: c.name, width: NODE_W, height: NODE_H }));
  const edges: [string, string][] = [];
  for (const c of comps) for (const u of c.upstream ?? []) edges.push([u, c.name]);
  const { pos, routes, width, height } = layered(nodes, edges, { gapX: 30, gapY: 14 });
  const interactive = !!opts.onSelect;
  const svg = s("svg", {
    "data-testid": opts.testid ?? "dag",
    class: "chart dag",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: interactive ? "group" : "img",
    "aria-label": interactive ? "components of the run; Enter selects one" : `components: ${comps.map((c) => `${c.name} ${c.state}`).join(", ")}`,
  });
  fitWidth(svg, width);
  const marker = `arrow-${opts.testid ?? "dag"}`;
  svg.append(arrowMarker(marker));
  const eg = s("g", { class: "edges" });
  for (const [a, b] of edges) {
    const r = routes.get(`${a}->${b}`);
    if (r) eg.append(s("path", { d: routePath(r), "marker-end": `url(#${marker})` }, s("title", {}, `${a} → ${b}`)));
  }
  svg.append(eg);
  for (const c of comps) {
    const p = pos.get(c.name)!;
    const selected = c.name === opts.selected;
    const dark = !["pending", "skipped"].includes(c.state);
    const g = s("g", {
      class: `node st-${cssIdent(c.state)}${selected ? " selected" : ""}`,
      transform: `translate(${p.x},${p.y})`,
      tabindex: interactive ? 0 : undefined,
      role: interactive ? "button" : undefined,
      "aria-pressed": interactive ? (selected ? "true" : "false") : undefined,
      "aria-label": interactive ? `${c.name}: ${c.state}, ${fmtSeconds(c.seconds)}` : undefined,
      "data-testid": `${opts.testid ?? "dag"}-node-${tid(c.name)}`,
      "data-state": c.state,
      "data-key": interactive ? `node:${c.name}` : undefined,
    });
    g.append(s("rect", { class: "focus-ring", x: -4, y: -4, width: NODE_W + 8, height: NODE_H + 8, rx: 10 }));
    g.append(s("rect", { width: NODE_W, height: NODE_H, rx: 7, fill: stateColor(c.state), stroke: selected ? "#111827" : "none", "stroke-width": 2.5 }));
    g.append(s("text", { x: 10, y: 20, class: dark ? "on-dark name" : "name" }, c.name));
    const sub = ["pending", "skipped", "held", "running"].includes(c.state) ? (c.state === "running" ? "running…" : c.state) : `${c.state} · ${fmtSeconds(c.seconds)}`;
    g.append(s("text", { x: 10, y: 38, class: dark ? "on-dark sub" : "sub" }, sub));
    g.append(s("title", {}, `${c.name} (${c.kind}): ${c.state}${c.note ? ` — ${c.note}` : ""}`));
    if (opts.onSelect) {
      const select = opts.onSelect;
      g.addEventListener("click", () => select(c.name));
      g.addEventListener("keydown", (e) => {
        const k = (e as KeyboardEvent).key;
        if (k === "Enter" || k === " ") {
          e.preventDefault();
          select(c.name);
        }
      });
    }
    svg.append(g);
  }
  return h("div", { class: "scroll-x" }, svg);
}

export class RunView implements View {
  private selected: string | null = null;
  private picked = false;  // chosen by the user: no longer follows the running component
  private artifacts: Artifact[] | null = null;
  private searchedAll = false;

  constructor(
    private readonly pipeline: string,
    private readonly runId: string,
    private readonly app: App,
  ) {}

  title(): string {
    return `${this.pipeline} / ${this.runId}`;
  }

  private select(name: string): void {
    this.selected = name;
    this.picked = true;
    this.app.refresh();
  }

  async render(): Promise<Rendered> {
    const run = await getJSON<Run>(`runs/${enc(this.pipeline)}/${enc(this.runId)}`);
    const live = run.state === "running";
    // Outputs become artifacts in the store once a component finishes; fetch the list
    // again while the run goes on.
    if (!this.artifacts || live) this.artifacts = await getJSON<Artifact[]>("artifacts");
    let byUri = new Map(this.artifacts.map((a) => [a.uri, a]));
    const unmatched = (run.components ?? []).some((c) => Object.values(c.outputs ?? {}).some((p) => !byUri.has(p)));
    if (unmatched && !live && this.artifacts.length >= 1000 && !this.searchedAll) {
      // An older run in a big store: its outputs are beyond the newest 1000 artifacts.
      this.searchedAll = true;
      this.artifacts = await getJSON<Artifact[]>("artifacts?limit=100000");
      byUri = new Map(this.artifacts.map((a) => [a.uri, a]));
    }
    const byName = new Map((run.components ?? []).map((c) => [c.name, c]));
    const comps = (run.components ?? []).map((c) => ({ ...c, state: shownState(c, run, byName) }));
    if (!this.picked || !comps.some((c) => c.name === this.selected)) {
      const pick =
        comps.find((c) => c.state === "running") ??
        comps.find((c) => c.state === "failed") ??
        comps.find((c) => c.state === "held") ??
        [...comps].reverse().find((c) => c.state !== "pending" && c.state !== "skipped") ??
        comps[0];
      this.selected = pick?.name ?? null;
    }

    const root = h("div", { class: "view view-run" });
    root.append(
      h("h1", { tabindex: -1 }, link(hashOf(["runs"], { pipeline: run.pipeline }), run.pipeline), " / ", run.run_id, " ",
        badge(run.state, "run-state")),
    );
    const facts = h("p", { class: "facts" },
      live ? "going on, drawn again every 2 s" : h("span", {}, "took ", run.seconds === undefined ? "–" : num(run.seconds, "run-seconds", { suffix: " s" })),
      run.run_dir ? h("span", {}, " · ", h("code", {}, run.run_dir)) : null);
    if (run.held_by) facts.append(h("span", { class: "warn" }, ` · pushes held: ${run.held_by} found drift`));
    if (run.stopped_by) facts.append(h("span", { class: "bad" }, ` · stopped by ${run.stopped_by}`));
    if (run.approved) facts.append(h("span", {}, " · approved"));
    root.append(facts);

    // The artifacts the run's components wrote, by type: the ways into the other views.
    const produced: { comp: Component; role: string; art: Artifact }[] = [];
    for (const c of comps) {
      for (const [role, path] of Object.entries(c.outputs ?? {})) {
        const a = byUri.get(path);
        if (a) produced.push({ comp: c, role, art: a });
      }
    }
    if (produced.length) {
      const ul = h("ul", { class: "chips", "data-testid": "run-artifacts" });
      for (const p of produced) {
        const extra: Node[] = [];
        if (p.art.type === "Model") {
          extra.push(link(hashOf(["models"], { model: p.art.id }), "in Models", { "data-testid": "run-model-link" }));
          extra.push(link(hashOf(["training"], { model: p.art.id }), "curves", { "data-testid": "run-training-link" }));
        }
        if (p.art.type === "ExampleStatistics") {
          extra.push(link(hashOf(["data", String(p.art.id)]), "statistics", { "data-testid": "run-data-link" }));
        }
        ul.append(h("li", {}, h("span", { class: "type" }, p.art.type), " ", lineageLink(p.art.id, `#${p.art.id}`, `run-artifact-${p.art.id}`),
          ...extra.flatMap((e) => [" · ", e])));
      }
      root.append(section("Artifacts", ul));
    }

    root.append(section("Components", this.dag(comps), legend(Object.entries(STATE_COLORS).map(([name, color]) => ({ name, color })), "state-legend")));

    const cols = h("div", { class: "cols" });
    cols.append(this.table(comps));
    const sel = comps.find((c) => c.name === this.selected);
    cols.append(sel ? await this.details(run, sel, byUri) : h("div"));
    root.append(cols);
    return { node: root, live };
  }

  private dag(comps: Component[]): HTMLElement {
    return dagChart(comps, { selected: this.selected, onSelect: (name) => this.select(name) });
  }

  private table(comps: Component[]): HTMLElement {
    const table = h("table", { class: "grid comps", "data-testid": "components-table" },
      h("thead", {}, h("tr", {}, ...["component", "kind", "state", "seconds", "attempts"].map((c) => h("th", { scope: "col" }, c)))));
    const tb = h("tbody");
    for (const c of comps) {
      tb.append(h("tr", { class: c.name === this.selected ? "selected" : undefined },
        h("td", {}, h("button", { type: "button", class: "linklike", "data-testid": `comp-${tid(c.name)}`, "data-key": `comp:${c.name}`, "aria-pressed": c.name === this.selected ? "true" : "false", onclick: () => this.select(c.name) }, c.name)),
        h("td", {}, c.kind),
        h("td", {}, badge(c.state, `comp-state-${tid(c.name)}`)),
        h("td", {}, num(c.seconds, `comp-seconds-${tid(c.name)}`)),
        h("td", {}, num(c.attempts, `comp-attempts-${tid(c.name)}`)),
      ));
    }
    table.append(tb);
    const timed = comps.filter((c) => c.state === "ran" || c.state === "failed" || c.state === "cached");
    const chart = hbars(timed.map((c) => ({ label: c.name, values: [c.seconds] })), {
      testid: "durations",
      colors: ["#64748b"],
      width: 420,
      format: (v) => fmtSeconds(v),
    });
    return h("div", {}, section("Durations", timed.length ? chart : empty("No component has finished yet.")), section("States and times", table));
  }

  private async details(run: Run, c: Component, byUri: Map<string, Artifact>): Promise<HTMLElement> {
    const box = section(`${c.name}`);
    box.setAttribute("data-testid", "component-details");
    const dl = h("dl", { class: "kv" });
    const row = (k: string, v: Node | string) => dl.append(h("dt", {}, k), h("dd", {}, v));
    row("kind", c.kind);
    row("state", badge(c.state, "detail-state"));
    row("seconds", num(c.seconds, "detail-seconds"));
    row("attempts", num(c.attempts, "detail-attempts"));
    if (c.exit_code !== undefined) row("exit code", num(c.exit_code, "detail-exit-code"));
    if (c.upstream?.length) row("after", c.upstream.join(", "));
    if (c.note) row("note", h("span", { class: "note" }, c.note));
    if (c.drift?.length) {
      row("drift in", h("span", { class: "warn" }, c.drift.join(", ")));
    }
    for (const [role, path] of Object.entries(c.outputs ?? {})) {
      const a = byUri.get(path);
      row(`output ${role}`, h("span", {}, a ? h("span", {}, `${a.type} `, lineageLink(a.id, `#${a.id}`, `output-${tid(role)}`), " ") : null, h("code", { class: "path" }, path)));
    }
    if (c.execution_id) row("execution", `#${c.execution_id}`);
    box.append(dl);
    let log: Node;
    if (["pending", "skipped", "held"].includes(c.state)) {
      log = empty(`No log: the component ${c.state === "pending" ? "has not started" : `was ${c.state}`}.`);
    } else {
      try {
        const text = await getText(`runs/${enc(run.pipeline)}/${enc(run.run_id)}/log/${enc(c.name)}`);
        log = h("pre", { class: "log", "data-testid": "component-log", tabindex: 0, "data-key": `log:${c.name}`, "aria-label": `log of ${c.name}` }, text || "(empty)");
      } catch (e) {
        log = empty(`No log: ${(e as Error).message}`);
      }
    }
    box.append(h("h3", {}, "log"), log);
    return box;
  }
}
