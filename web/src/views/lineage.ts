// Lineage: the graph of artifacts and executions around one artifact, left (what made it)
// to right (what used it). Every artifact is a link to its own lineage.

import { getJSON, type Artifact, type ArtifactDetail, type Execution, type Lineage } from "../api";
import { hashOf, type Rendered, type View } from "../app";
import { arrowMarker, fitWidth, layered, routePath, type GraphNode } from "../charts";
import { empty, fmtTime, h, link, s, section, value } from "../dom";

const A_W = 156;
const A_H = 44;
const E_W = 136;
const E_H = 34;

export const TYPE_COLORS: Record<string, string> = {
  RawData: "#a16207",
  Examples: "#2563eb",
  ExampleStatistics: "#0891b2",
  Schema: "#7c3aed",
  ExampleAnomalies: "#dc2626",
  TransformGraph: "#9333ea",
  Model: "#059669",
  ModelBlessing: "#16a34a",
  InfraBlessing: "#65a30d",
  PushedModel: "#ea580c",
};

function shortText(t: string, n: number): string {
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

/** Where an artifact of this type is shown besides its lineage. */
export function viewOf(a: Artifact): { href: string; text: string } | null {
  switch (a.type) {
    case "ExampleStatistics":
      return { href: hashOf(["data", String(a.id)]), text: "statistics" };
    case "Model":
      return { href: hashOf(["models"], { model: a.id }), text: "in Models" };
    default:
      return null;
  }
}

export class LineageView implements View {
  constructor(
    private readonly id: number,
    private readonly query: URLSearchParams,
  ) {}

  title(): string {
    return `Lineage of #${this.id}`;
  }

  async render(): Promise<Rendered> {
    const hops = Math.max(1, Math.min(6, Number(this.query.get("hops") ?? 1) || 1));
    const [lin, detail] = await Promise.all([
      getJSON<Lineage>(`lineage/${this.id}?hops=${hops}`),
      getJSON<ArtifactDetail>(`artifacts/${this.id}`),
    ]);
    const a = detail.artifact;
    const root = h("div", { class: "view view-lineage" });
    root.append(h("h1", { tabindex: -1 }, `Lineage of ${a.type} #${a.id}`));
    const hopLinks = h("p", { class: "controls" }, "executions away: ");
    for (const n of [1, 2, 3, 4]) {
      hopLinks.append(n === hops ? h("strong", { "aria-current": "true" }, String(n)) : link(hashOf(["lineage", String(this.id)], { hops: n }), String(n), { "data-testid": `hops-${n}` }), " ");
    }
    root.append(hopLinks);
    root.append(section("Graph", this.graph(lin)));
    root.append(this.details(detail));
    return { node: root, live: false };
  }

  private graph(lin: Lineage): Node {
    if (!lin.artifacts.length) return empty("No lineage recorded.");
    const nodes: GraphNode[] = [
      ...lin.artifacts.map((a) => ({ id: `a${a.id}`, width: A_W, height: A_H })),
      ...lin.executions.map((e) => ({ id: `e${e.id}`, width: E_W, height: E_H })),
    ];
    const edges: [string, string][] = lin.events.map((ev) =>
      ev.type === "INPUT" ? [`a${ev.artifact_id}`, `e${ev.execution_id}`] : [`e${ev.execution_id}`, `a${ev.artifact_id}`],
    );
    const { pos, routes, width, height } = layered(nodes, edges, { gapX: 44, gapY: 12 });
    const svg = s("svg", { "data-testid": "lineage-graph", class: "chart lineage", viewBox: `0 0 ${width} ${height}`, width, height, role: "group", "aria-label": "lineage graph; artifacts are links" });
    fitWidth(svg, width);
    svg.append(arrowMarker("larrow"));
    const eg = s("g", { class: "edges" });
    lin.events.forEach((ev, i) => {
      const [from, to] = edges[i];
      const r = routes.get(`${from}->${to}`);
      if (!r) return;
      eg.append(s("path", { d: routePath(r), "marker-end": "url(#larrow)" },
        s("title", {}, `${ev.type === "INPUT" ? "input" : "output"} ${ev.path ?? ""}`)));
    });
    svg.append(eg);
    const execs = new Map<number, Execution>(lin.executions.map((e) => [e.id, e]));
    for (const e of execs.values()) {
      const p = pos.get(`e${e.id}`)!;
      const comp = String(e.custom_properties?.component ?? "");
      const run = String(e.custom_properties?.run ?? "");
      svg.append(s("g", { class: "exec", transform: `translate(${p.x},${p.y})`, "data-testid": `lineage-exec-${e.id}` },
        s("rect", { width: E_W, height: E_H, rx: 17 }),
        s("text", { x: E_W / 2, y: 14, "text-anchor": "middle", class: "name" }, shortText(e.type, 20)),
        s("text", { x: E_W / 2, y: 27, "text-anchor": "middle", class: "sub" }, shortText(`e${e.id}${run ? ` · ${run}` : ""}${e.state && e.state !== "COMPLETE" ? ` · ${e.state.toLowerCase()}` : ""}`, 24)),
        s("title", {}, `execution ${e.id}: ${e.type}${comp ? ` (${comp})` : ""}${run ? ` in run ${run}` : ""}, ${e.state ?? ""}`)));
    }
    // In reading order (column by column, top to bottom), which is also the tab order.
    const arts = [...lin.artifacts].sort((x, y) => {
      const px = pos.get(`a${x.id}`)!;
      const py = pos.get(`a${y.id}`)!;
      return px.x - py.x || px.y - py.y;
    });
    for (const a of arts) {
      const p = pos.get(`a${a.id}`)!;
      const isRoot = a.id === this.id;
      const color = TYPE_COLORS[a.type] ?? "#475569";
      svg.append(s("a", { href: hashOf(["lineage", String(a.id)]), class: `art${isRoot ? " root" : ""}`, "data-testid": `lineage-node-${a.id}`, "data-type": a.type, "data-key": `art:${a.id}`, "aria-label": `${a.type} #${a.id}` },
        s("g", { transform: `translate(${p.x},${p.y})` },
          s("rect", { class: "focus-ring", x: -4, y: -4, width: A_W + 8, height: A_H + 8, rx: 9 }),
          s("rect", { width: A_W, height: A_H, rx: 5, fill: "#fff", stroke: color, "stroke-width": isRoot ? 3.5 : 1.5 }),
          s("rect", { width: 6, height: A_H, fill: color }),
          s("text", { x: 14, y: 18, class: "name" }, shortText(a.type, 20)),
          s("text", { x: 14, y: 34, class: "sub" }, shortText(`#${a.id} · ${a.uri.split("/").filter(Boolean).slice(-3).join("/")}`, 24)),
          s("title", {}, `${a.type} #${a.id}: ${a.uri}`))));
    }
    return h("div", { class: "scroll-x" }, svg);
  }

  private details(d: ArtifactDetail): HTMLElement {
    const a = d.artifact;
    const box = section(`${a.type} #${a.id}`);
    box.setAttribute("data-testid", "artifact-details");
    const dl = h("dl", { class: "kv" });
    const row = (k: string, v: Node | string) => dl.append(h("dt", {}, k), h("dd", {}, v));
    row("uri", h("code", { class: "path", "data-testid": "artifact-uri" }, a.uri));
    row("created", fmtTime(a.create_time_ms));
    const v = viewOf(a);
    if (v) row("shown in", link(v.href, v.text, { "data-testid": "artifact-view-link" }));
    for (const [k, val] of Object.entries(a.properties ?? {})) row(k, value(val, `prop-${k}`));
    for (const [k, val] of Object.entries(a.custom_properties ?? {})) {
      if (k.endsWith("fingerprint") || k === "content_sha256") continue;
      row(k, value(val, `prop-${k}`));
    }
    const e = d.produced_by;
    if (e) {
      const cp = e.custom_properties ?? {};
      const run = cp.run ? String(cp.run) : "";
      const pipeline = d.contexts?.find((c) => c.type === "pipeline")?.name;
      row("made by", h("span", {}, `${e.type} e${e.id}`, cp.component ? ` (${cp.component})` : "",
        run && pipeline ? h("span", {}, " in run ", link(hashOf(["runs", pipeline, run]), run, { "data-testid": "artifact-run-link" })) : run ? ` in run ${run}` : ""));
    } else {
      row("made by", "nothing recorded (registered or imported)");
    }
    if (d.contexts?.length) row("contexts", d.contexts.map((c) => `${c.type} ${c.name}`).join(", "));
    box.append(dl);
    return box;
  }
}
