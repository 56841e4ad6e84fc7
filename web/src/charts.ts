// Hand-made SVG charts: histograms, horizontal bars, line charts with several series, and
// layered graphs (a pipeline's DAG, an artifact's lineage). Every chart is an <svg> with a
// data-testid; marks carry <title>s so a pointer shows their values.

import { fmt, s } from "./dom";
import type { Bucket } from "./api";

export const PALETTE = [
  "#2563eb", "#ea580c", "#059669", "#9333ea", "#dc2626",
  "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d",
];

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function svgRoot(testid: string, width: number, height: number, label: string): SVGElement {
  return s("svg", {
    "data-testid": testid,
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": label,
  });
}

function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  if (d1 === d0) return () => (r0 + r1) / 2;
  return (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
}

export interface HistSeries {
  name: string;
  color: string;
  buckets: Bucket[];
}

/**
 * Bars of one or more histograms on one numeric axis. With several series, bar heights
 * are each series' share of its own total, so spans of different sizes compare.
 */
export function histogram(
  series: HistSeries[],
  opts: { testid: string; width?: number; height?: number; label?: string },
): SVGElement {
  const W = opts.width ?? 360;
  const H = opts.height ?? 150;
  const m = { l: 40, r: 8, t: 8, b: 30 };
  const svg = svgRoot(opts.testid, W, H, opts.label ?? "histogram");
  const shared = series.length > 1;
  const all = series.flatMap((x) => x.buckets);
  if (!all.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted" }, "no histogram"));
    return svg;
  }
  let lo = Math.min(...all.map((b) => b.low));
  let hi = Math.max(...all.map((b) => b.high));
  if (hi === lo) {
    lo -= 0.5;
    hi += 0.5;
  }
  const heights = series.map((x) => {
    const total = x.buckets.reduce((a, b) => a + b.count, 0) || 1;
    return x.buckets.map((b) => (shared ? b.count / total : b.count));
  });
  const ymax = Math.max(...heights.flat(), 1e-12);
  const X = linear(lo, hi, m.l, W - m.r);
  const Y = linear(0, ymax, H - m.b, m.t);
  drawAxes(svg, W, H, m, X, Y, ticks(lo, hi, 4), ticks(0, ymax, 3), shared ? pct : fmt);
  series.forEach((x, si) => {
    const g = s("g", { "data-series": x.name, fill: x.color, "fill-opacity": shared ? 0.55 : 0.85 });
    x.buckets.forEach((b, i) => {
      let x0 = X(b.low);
      let x1 = X(b.high);
      if (x1 - x0 < 2) {
        const c = (x0 + x1) / 2;
        x0 = c - 1;
        x1 = c + 1;
      }
      const y = Y(heights[si][i]);
      g.append(
        s(
          "rect",
          {
            x: x0 + 0.5,
            y,
            width: Math.max(1, x1 - x0 - 1),
            height: Math.max(0, H - m.b - y),
            "data-count": b.count,
          },
          s("title", {}, `${x.name}: [${fmt(b.low)}, ${fmt(b.high)}): ${fmt(b.count)}`),
        ),
      );
    });
    svg.append(g);
  });
  return svg;
}

function pct(v: number): string {
  return `${fmt(v * 100, 3)}%`;
}

function drawAxes(
  svg: SVGElement,
  W: number,
  H: number,
  m: { l: number; r: number; t: number; b: number },
  X: (v: number) => number,
  Y: (v: number) => number,
  xt: number[],
  yt: number[],
  yfmt: (v: number) => string = fmt,
  xfmt: (v: number) => string = fmt,
): void {
  const g = s("g", { class: "axis" });
  g.append(s("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  g.append(s("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  for (const t of xt) {
    const x = X(t);
    g.append(s("line", { x1: x, x2: x, y1: H - m.b, y2: H - m.b + 4 }));
    g.append(s("text", { x, y: H - m.b + 16, "text-anchor": "middle" }, xfmt(t)));
  }
  for (const t of yt) {
    const y = Y(t);
    g.append(s("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y, y2: y }));
    g.append(s("text", { x: m.l - 5, y: y + 4, "text-anchor": "end" }, yfmt(t)));
  }
  svg.append(g);
}

/** The boundaries of quantile buckets as ticks on one axis, with the median marked. */
export function quantileStrip(
  buckets: Bucket[],
  opts: { testid: string; width?: number; color?: string },
): SVGElement {
  const W = opts.width ?? 360;
  const H = 34;
  const svg = svgRoot(opts.testid, W, H, "quantiles");
  if (!buckets.length) return svg;
  const edges = [buckets[0].low, ...buckets.map((b) => b.high)];
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  const X = linear(lo, hi === lo ? lo + 1 : hi, 40, W - 8);
  svg.append(s("rect", { class: "q-band", x: X(lo), y: 8, width: Math.max(1, X(hi) - X(lo)), height: 10 }));
  edges.forEach((e, i) => {
    const mid = i === Math.floor(edges.length / 2);
    svg.append(
      s(
        "path",
        {
          d: `M${X(e)},${mid ? 3 : 6}V${mid ? 23 : 20}`,
          stroke: mid ? "#111827" : opts.color ?? "#2563eb",
          "stroke-width": mid ? 2 : 1,
        },
        s("title", {}, `${Math.round((100 * i) / (edges.length - 1))}%: ${fmt(e)}`),
      ),
    );
  });
  svg.append(s("text", { x: X(lo), y: 32, "text-anchor": "start", class: "tick" }, fmt(lo)));
  svg.append(s("text", { x: X(hi), y: 32, "text-anchor": "end", class: "tick" }, fmt(hi)));
  return svg;
}

export interface BarRow {
  label: string;
  values: (number | null)[];
}

/** Horizontal bars: one row per label, one bar per series; values printed at the end. */
export function hbars(
  rows: BarRow[],
  opts: {
    testid: string;
    colors: string[];
    names?: string[];
    width?: number;
    labelWidth?: number;
    format?: (v: number) => string;
    domain?: [number, number];
  },
): SVGElement {
  const W = opts.width ?? 360;
  const lw = opts.labelWidth ?? 110;
  const n = Math.max(1, opts.colors.length);
  const bar = 12;
  const rowH = n * bar + 8;
  const H = rows.length * rowH + 6;
  const svg = svgRoot(opts.testid, W, H, "bars");
  const vals = rows.flatMap((r) => r.values.filter((v): v is number => v !== null));
  const d0 = opts.domain?.[0] ?? Math.min(0, ...vals);
  const d1 = opts.domain?.[1] ?? Math.max(1e-12, ...vals);
  const X = linear(d0, d1, lw, W - 56);
  const f = opts.format ?? ((v: number) => fmt(v));
  rows.forEach((r, i) => {
    const y0 = 4 + i * rowH;
    const label = r.label.length > 16 ? `${r.label.slice(0, 15)}…` : r.label;
    svg.append(
      s("text", { x: lw - 6, y: y0 + (n * bar) / 2 + 4, "text-anchor": "end", class: "label" }, label,
        s("title", {}, r.label)),
    );
    r.values.forEach((v, si) => {
      const y = y0 + si * bar;
      if (v === null) {
        svg.append(s("text", { x: lw + 4, y: y + bar - 2, class: "tick" }, "–"));
        return;
      }
      const x0 = X(Math.max(d0, Math.min(0, v)));
      const x1 = X(v);
      const name = opts.names?.[si];
      svg.append(
        s(
          "rect",
          {
            x: Math.min(x0, x1),
            y,
            width: Math.max(1, Math.abs(x1 - x0)),
            height: bar - 2,
            fill: opts.colors[si],
            "data-value": v,
          },
          s("title", {}, `${name ? `${name}: ` : ""}${r.label}: ${f(v)}`),
        ),
      );
      svg.append(s("text", { x: Math.max(x0, x1) + 4, y: y + bar - 3, class: "tick" }, f(v)));
    });
  });
  return svg;
}

export interface LineSeries {
  name: string;
  color: string;
  points: [number, number][];
}

/** Lines of several series on shared axes; each point is a circle with its value. */
export function lineChart(
  series: LineSeries[],
  opts: { testid: string; width?: number; height?: number; xLabel?: string; label?: string },
): SVGElement {
  const W = opts.width ?? 420;
  const H = opts.height ?? 220;
  const m = { l: 50, r: 12, t: 10, b: 34 };
  const svg = svgRoot(opts.testid, W, H, opts.label ?? "line chart");
  const pts = series.flatMap((x) => x.points);
  if (!pts.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted" }, "no points"));
    return svg;
  }
  let x0 = Math.min(...pts.map((p) => p[0]));
  let x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1]));
  let y1 = Math.max(...pts.map((p) => p[1]));
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  if (y0 === y1) {
    y0 -= Math.abs(y0) * 0.1 || 1;
    y1 += Math.abs(y1) * 0.1 || 1;
  }
  const pad = (y1 - y0) * 0.06;
  y0 -= pad;
  y1 += pad;
  const X = linear(x0, x1, m.l, W - m.r);
  const Y = linear(y0, y1, H - m.b, m.t);
  drawAxes(svg, W, H, m, X, Y, ticks(x0, x1, 5), ticks(y0, y1, 4));
  if (opts.xLabel) {
    svg.append(s("text", { x: W - m.r, y: H - 3, "text-anchor": "end", class: "tick" }, opts.xLabel));
  }
  for (const x of series) {
    const sorted = [...x.points].sort((a, b) => a[0] - b[0]);
    const g = s("g", { "data-series": x.name });
    const d = sorted.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    g.append(s("path", { d, fill: "none", stroke: x.color, "stroke-width": 2, "stroke-linejoin": "round" }));
    for (const p of sorted) {
      g.append(
        s("circle", { cx: X(p[0]), cy: Y(p[1]), r: sorted.length > 40 ? 1.5 : 3, fill: x.color },
          s("title", {}, `${x.name}: step ${p[0]}: ${fmt(p[1])}`)),
      );
    }
    svg.append(g);
  }
  return svg;
}

/** A legend: colour swatches with names. */
export function legend(items: { name: string; color: string }[], testid?: string): HTMLElement {
  const ul = document.createElement("ul");
  ul.className = "legend";
  if (testid) ul.dataset.testid = testid;
  for (const it of items) {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = it.color;
    li.append(sw, it.name);
    ul.append(li);
  }
  return ul;
}

export interface GraphNode {
  id: string;
  width: number;
  height: number;
}

export interface Placed {
  x: number;
  y: number;
  level: number;
}

export interface Layout {
  pos: Map<string, Placed>;
  /** Per edge `from->to`, the points its line goes through, left to right. */
  routes: Map<string, [number, number][]>;
  width: number;
  height: number;
}

const DUMMY_H = 6;

/**
 * Places a DAG's nodes in columns by longest path from the sources (left to right). An
 * edge spanning several columns gets a placeholder in each column it crosses, so its line
 * runs between the nodes, not through them; a few sweeps order each column by the mean
 * position of its neighbours to keep lines short and crossings few. Cycles (not
 * expected) are broken by ignoring back edges.
 */
export function layered(
  nodes: GraphNode[],
  edges: [string, string][],
  opts: { gapX?: number; gapY?: number; margin?: number } = {},
): Layout {
  const gapX = opts.gapX ?? 36;
  const gapY = opts.gapY ?? 16;
  const margin = opts.margin ?? 10;
  const size = new Map(nodes.map((n) => [n.id, n]));
  const preds = new Map<string, string[]>();
  for (const n of nodes) preds.set(n.id, []);
  const real = edges.filter(([a, b]) => size.has(a) && size.has(b) && a !== b);
  for (const [a, b] of real) preds.get(b)!.push(a);
  const level = new Map<string, number>();
  const visiting = new Set<string>();
  const depth = (id: string): number => {
    if (level.has(id)) return level.get(id)!;
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let l = 0;
    for (const p of preds.get(id)!) l = Math.max(l, depth(p) + 1);
    visiting.delete(id);
    level.set(id, l);
    return l;
  };
  nodes.forEach((n) => depth(n.id));

  // Columns of node ids, placeholders included; each edge as a chain of ids.
  const cols: string[][] = [];
  const heightOf = new Map<string, number>();
  for (const n of nodes) {
    (cols[level.get(n.id)!] ??= []).push(n.id);
    heightOf.set(n.id, n.height);
  }
  const up = new Map<string, string[]>();
  const down = new Map<string, string[]>();
  const link = (a: string, b: string) => {
    (down.get(a) ?? down.set(a, []).get(a)!).push(b);
    (up.get(b) ?? up.set(b, []).get(b)!).push(a);
  };
  const chains = new Map<string, string[]>();
  for (const [a, b] of real) {
    const la = level.get(a)!;
    const lb = level.get(b)!;
    if (lb <= la) continue;  // a back edge of a cycle: not drawn through placeholders
    const chain = [a];
    for (let l = la + 1; l < lb; l++) {
      const d = `\u0001${a}->${b}@${l}`;
      (cols[l] ??= []).push(d);
      heightOf.set(d, DUMMY_H);
      chain.push(d);
    }
    chain.push(b);
    for (let i = 1; i < chain.length; i++) link(chain[i - 1], chain[i]);
    chains.set(`${a}->${b}`, chain);
  }
  for (let l = 0; l < cols.length; l++) cols[l] ??= [];

  const order = new Map<string, number>();
  const renumber = (col: string[]) => col.forEach((id, i) => order.set(id, i));
  cols.forEach(renumber);
  const sweep = (col: string[], nb: Map<string, string[]>) => {
    const bary = (id: string) => {
      const ns = (nb.get(id) ?? []).filter((x) => order.has(x));
      return ns.length ? ns.reduce((a, x) => a + order.get(x)!, 0) / ns.length : order.get(id)!;
    };
    const keyed = col.map((id, i) => ({ id, b: bary(id), i }));
    keyed.sort((a, b) => a.b - b.b || a.i - b.i);
    col.splice(0, col.length, ...keyed.map((k) => k.id));
    renumber(col);
  };
  for (let it = 0; it < 4; it++) {
    for (let l = 1; l < cols.length; l++) sweep(cols[l], up);
    for (let l = cols.length - 2; l >= 0; l--) sweep(cols[l], down);
  }

  const colWidth = cols.map((c) => Math.max(0, ...c.filter((id) => size.has(id)).map((id) => size.get(id)!.width)));
  const colHeight = cols.map((c) => c.reduce((a, id) => a + heightOf.get(id)!, 0) + gapY * Math.max(0, c.length - 1));
  const height = Math.max(0, ...colHeight) + 2 * margin;
  const pos = new Map<string, Placed>();
  const colX: number[] = [];
  let x = margin;
  cols.forEach((c, li) => {
    colX[li] = x;
    let y = margin + (height - 2 * margin - colHeight[li]) / 2;
    for (const id of c) {
      const w = size.get(id)?.width ?? 0;
      pos.set(id, { x: x + (colWidth[li] - w) / 2, y, level: li });
      y += heightOf.get(id)! + gapY;
    }
    x += colWidth[li] + gapX;
  });

  const routes = new Map<string, [number, number][]>();
  for (const [key, chain] of chains) {
    const pts: [number, number][] = [];
    chain.forEach((id, i) => {
      const p = pos.get(id)!;
      const cy = p.y + heightOf.get(id)! / 2;
      if (i === 0) {
        pts.push([p.x + size.get(id)!.width, cy]);
      } else if (i === chain.length - 1) {
        pts.push([p.x, cy]);
      } else {
        pts.push([colX[p.level], cy], [colX[p.level] + colWidth[p.level], cy]);
      }
    });
    routes.set(key, pts);
  }
  const realPos = new Map([...pos].filter(([id]) => size.has(id)));
  return { pos: realPos, routes, width: x - gapX + margin, height };
}

/** A smooth line through `pts` (left to right), leaving and entering each horizontally. */
export function routePath(pts: [number, number][]): string {
  if (!pts.length) return "";
  let d = `M${pts[0][0].toFixed(1)},${pts[0][1].toFixed(1)}`;
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1];
    let [x1, y1] = pts[i];
    if (i === pts.length - 1) x1 -= 4;  // room for the arrow head
    if (Math.abs(y1 - y0) < 0.5) {
      d += `L${x1.toFixed(1)},${y1.toFixed(1)}`;
      continue;
    }
    const dx = Math.max(12, (x1 - x0) / 2);
    d += `C${(x0 + dx).toFixed(1)},${y0.toFixed(1)} ${(x1 - dx).toFixed(1)},${y1.toFixed(1)} ${x1.toFixed(1)},${y1.toFixed(1)}`;
  }
  return d;
}

/** Sizes a wide graph to its container, shrunk at most to `minScale` (then it scrolls). */
export function fitWidth(svg: SVGElement, width: number, minScale = 0.75): void {
  svg.setAttribute("style", `width:100%;max-width:${width}px;min-width:${Math.round(width * minScale)}px;height:auto`);
}

export function arrowMarker(id: string): SVGElement {
  return s(
    "defs",
    {},
    s(
      "marker",
      { id, viewBox: "0 0 8 8", refX: 6, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
      s("path", { d: "M0,0L8,4L0,8z", fill: "#6b7280" }),
    ),
  );
}
