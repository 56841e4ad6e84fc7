// Data: a statistics artifact per feature (histograms, quantiles, top values, missing
// values), side by side with another span, with drift scores and the validator's anomalies.

import {
  enc, getJSON, type Anomalies, type Artifact, type Drift, type FeatureStats, type Lineage, type Statistics,
} from "../api";
import { hashOf, type Rendered, type View } from "../app";
import { hbars, histogram, legend, quantileStrip } from "../charts";
import { empty, fmt, fmtTime, h, lineageLink, num, section, tid } from "../dom";

const CUR = "#2563eb";
const BASE = "#ea580c";

function spanLabel(a: Artifact): string {
  // .../runs/RUN/stats/out -> RUN; otherwise the artifact's number.
  const m = a.uri.match(/\/([^/]+)\/[^/]+\/out\/?$/);
  return m ? `#${a.id} (${m[1]})` : `#${a.id}`;
}

interface Found {
  anomaliesId: number | null;
  previousId: number | null;
}

/** The validator run on these statistics: its anomalies, and what it compared them with. */
async function validatorOf(statsId: number): Promise<Found> {
  const found: Found = { anomaliesId: null, previousId: null };
  let lin: Lineage;
  try {
    lin = await getJSON<Lineage>(`lineage/${statsId}?hops=1`);
  } catch {
    return found;
  }
  const types = new Map(lin.artifacts.map((a) => [a.id, a.type]));
  const validators = lin.executions
    .filter((e) => e.type === "ExampleValidator")
    .filter((e) => lin.events.some((ev) => ev.execution_id === e.id && ev.artifact_id === statsId && ev.type === "INPUT" && ev.path !== "previous"))
    .sort((a, b) => b.id - a.id);
  for (const v of validators) {
    const out = lin.events.find((ev) => ev.execution_id === v.id && ev.type === "OUTPUT" && types.get(ev.artifact_id) === "ExampleAnomalies");
    if (!out) continue;
    found.anomaliesId = out.artifact_id;
    const prev = lin.events.find((ev) => ev.execution_id === v.id && ev.type === "INPUT" && ev.path === "previous");
    found.previousId = prev ? prev.artifact_id : null;
    break;
  }
  return found;
}

export class DataView implements View {
  constructor(
    private readonly id: number | null,
    private readonly query: URLSearchParams,
  ) {}

  title(): string {
    return "Data";
  }

  async render(): Promise<Rendered> {
    const root = h("div", { class: "view view-data" });
    root.append(h("h1", { tabindex: -1 }, "Data"));
    const list = await getJSON<Artifact[]>("artifacts?type=ExampleStatistics");
    if (!list.length && this.id === null) {
      root.append(empty("No statistics in this store yet: a pipeline's `stats` component writes them."));
      return { node: root, live: false };
    }
    const curId = this.id ?? list[0].id;
    const idx = list.findIndex((a) => a.id === curId);
    const found = await validatorOf(curId);
    let baseId: number | null = null;
    const q = this.query.get("compare");
    if (q === "none") baseId = null;
    else if (q) baseId = Number(q);
    else baseId = found.previousId ?? (idx >= 0 && idx + 1 < list.length ? list[idx + 1].id : null);

    const [stats, base] = await Promise.all([
      getJSON<Statistics>(`statistics/${curId}`),
      baseId !== null ? getJSON<Statistics>(`statistics/${baseId}`) : Promise.resolve(null),
    ]);
    const splits = stats.datasets.map((d) => d.name);
    const split = this.query.get("split") && splits.includes(this.query.get("split")!) ? this.query.get("split")! : splits[0];
    const ds = stats.datasets.find((d) => d.name === split);
    const bds = base?.datasets.find((d) => d.name === split) ?? null;

    let drift: Drift | null = null;
    if (baseId !== null && bds) {
      try {
        drift = await getJSON<Drift>(`drift?a=${curId}&b=${baseId}&split=${enc(split)}`);
      } catch {
        drift = null;
      }
    }
    let anomalies: Anomalies | null = null;
    if (found.anomaliesId !== null) {
      try {
        anomalies = await getJSON<Anomalies>(`anomalies/${found.anomaliesId}`);
      } catch {
        anomalies = null;
      }
    }

    // Choices: which statistics, which to compare with, which split.
    const go = (id: number, compare: number | null | "none", sp: string) => {
      const qq: Record<string, string | number> = { split: sp };
      if (compare !== null) qq.compare = compare;
      location.hash = hashOf(["data", String(id)], qq);
    };
    const option = (a: Artifact, selected: boolean) =>
      h("option", { value: a.id, selected }, `${spanLabel(a)} — ${fmtTime(a.create_time_ms)}`);
    const selCur = h("select", { id: "sel-stats", "data-testid": "select-stats", onchange: (e: Event) => go(Number((e.target as HTMLSelectElement).value), null, split) },
      ...list.map((a) => option(a, a.id === curId)));
    const selBase = h("select", { id: "sel-compare", "data-testid": "select-compare", onchange: (e: Event) => {
      const v = (e.target as HTMLSelectElement).value;
      go(curId, v === "none" ? "none" : Number(v), split);
    } }, h("option", { value: "none", selected: baseId === null }, "nothing"),
      ...list.filter((a) => a.id !== curId).map((a) => option(a, a.id === baseId)));
    const selSplit = h("select", { id: "sel-split", "data-testid": "select-split", onchange: (e: Event) => go(curId, baseId ?? "none", (e.target as HTMLSelectElement).value) },
      ...splits.map((sp) => h("option", { value: sp, selected: sp === split }, sp)));
    root.append(h("form", { class: "controls", onsubmit: (e: Event) => e.preventDefault() },
      h("label", { for: "sel-stats" }, "statistics "), selCur, " ",
      h("label", { for: "sel-compare" }, "compared with "), selBase, " ",
      h("label", { for: "sel-split" }, "split "), selSplit, " ",
      lineageLink(curId, "lineage", "data-lineage-link")));

    const counts = h("p", { class: "facts", "data-testid": "data-counts" });
    for (const d of stats.datasets) {
      counts.append(h("span", { class: d.name === split ? "strong" : undefined }, `${d.name}: `, num(d.num_examples, `num-examples-${tid(d.name)}`), " examples  "));
    }
    if (bds) counts.append(h("span", { class: "muted" }, " · compared with ", num(bds.num_examples, `base-num-examples-${tid(split)}`), ` ${split} examples`));
    root.append(counts);
    root.append(legend([{ name: `this span ${spanLabel(list.find((a) => a.id === curId) ?? ({ id: curId, uri: "" } as Artifact))}`, color: CUR },
      ...(bds && baseId !== null ? [{ name: `compared with ${spanLabel(list.find((a) => a.id === baseId) ?? ({ id: baseId, uri: "" } as Artifact))}`, color: BASE }] : [])], "data-legend"));

    // The validator's findings, if one ran on these statistics.
    const info = anomalies?.anomaly_info ?? {};
    const anomalous = new Set(Object.keys(info));
    if (found.anomaliesId !== null) {
      const box = section("Anomalies");
      box.setAttribute("data-testid", "anomalies");
      box.append(h("p", { class: "muted" }, "from the validator's ", lineageLink(found.anomaliesId, `ExampleAnomalies #${found.anomaliesId}`)));
      if (!anomalous.size && !anomalies?.dataset_anomaly_info) {
        box.append(empty("None: the data matches the schema and did not drift."));
      } else {
        const ul = h("ul", { class: "anomalies" });
        for (const [feat, a] of Object.entries(info)) {
          ul.append(h("li", { class: `sev-${(a.severity ?? "").toLowerCase()}`, "data-testid": `anomaly-${tid(feat)}` },
            h("strong", {}, feat), " ", h("span", { class: "badge st-failed" }, a.severity ?? "ANOMALY"), " ",
            a.short_description ?? "", h("div", { class: "muted small" }, a.description ?? "")));
        }
        if (anomalies?.dataset_anomaly_info) {
          const a = anomalies.dataset_anomaly_info;
          ul.append(h("li", { "data-testid": "anomaly-dataset" }, h("strong", {}, "dataset"), " ", a.short_description ?? "", h("div", { class: "muted small" }, a.description ?? "")));
        }
        box.append(ul);
      }
      root.append(box);
    }

    if (!ds) {
      root.append(empty(`No split ${split} in these statistics.`));
      return { node: root, live: false };
    }
    const driftBy = new Map((drift?.features ?? []).map((f) => [f.name, f]));
    const baseBy = new Map((bds?.features ?? []).map((f) => [f.name, f]));

    // One row per feature.
    const table = h("table", { class: "grid features", "data-testid": "features-table" },
      h("thead", {}, h("tr", {}, ...["feature", "type", "missing", "mean / unique", "drift", ""].map((c) => h("th", { scope: "col" }, c)))));
    const tb = h("tbody");
    for (const f of ds.features) {
      const d = driftBy.get(f.name);
      tb.append(h("tr", { class: anomalous.has(f.name) ? "anomaly" : undefined, "data-testid": `feature-row-${tid(f.name)}` },
        h("th", { scope: "row" }, f.name),
        h("td", {}, f.type),
        h("td", {}, num(f.missing_pct, `missing-pct-${tid(f.name)}`, { digits: 3, suffix: "%" })),
        h("td", {}, f.numeric ? num(f.numeric.mean, `mean-${tid(f.name)}`) : f.string ? h("span", {}, num(f.string.unique, `unique-${tid(f.name)}`), " values") : "–"),
        h("td", {}, d ? h("span", {}, num(d.score, `drift-${tid(f.name)}`), h("span", { class: "muted small" }, ` ${d.measure}`)) : "–"),
        h("td", {}, anomalous.has(f.name) ? h("span", { class: "badge st-failed", title: info[f.name].description ?? "" }, "anomaly") : ""),
      ));
    }
    table.append(tb);
    root.append(section(`Features of ${split}`, table));

    const grid = h("div", { class: "cards" });
    for (const f of ds.features) {
      const b = baseBy.get(f.name) ?? null;
      // Shares of the rows that have the feature, so spans of different sizes compare.
      const present = ds.num_examples - f.num_missing;
      const basePresent = b && bds ? bds.num_examples - b.num_missing : 0;
      grid.append(this.card(f, b, anomalous.has(f.name), driftBy.get(f.name)?.score, present, basePresent));
    }
    root.append(grid);
    return { node: root, live: false };
  }

  private card(f: FeatureStats, b: FeatureStats | null, anomaly: boolean, drift: number | undefined, present: number, basePresent: number): HTMLElement {
    const card = h("article", { class: `card${anomaly ? " anomaly" : ""}`, "data-testid": `feature-${tid(f.name)}` });
    card.append(h("h3", {}, f.name, " ", h("span", { class: "muted small" }, f.type), anomaly ? h("span", { class: "badge st-failed" }, "anomaly") : null,
      drift !== undefined ? h("span", { class: "muted small" }, " drift ", num(drift)) : null));
    const dl = h("dl", { class: "kv compact" });
    const row = (k: string, v: Node) => dl.append(h("dt", {}, k), h("dd", {}, v));
    row("missing", h("span", {}, num(f.num_missing, `stat-${tid(f.name)}-num_missing`), " (", num(f.missing_pct, `stat-${tid(f.name)}-missing_pct`, { digits: 3, suffix: "%" }), ")"));
    if (f.numeric) {
      const n = f.numeric;
      for (const k of ["mean", "std_dev", "min", "median", "max", "num_zeros"] as const) {
        row(k.replace("_", " "), h("span", {}, num(n[k], `stat-${tid(f.name)}-${k}`), b?.numeric ? h("span", { class: "base" }, " vs ", num(b.numeric[k])) : null));
      }
      card.append(dl);
      const series = [{ name: "this span", color: CUR, buckets: n.histogram }];
      if (b?.numeric) series.push({ name: "compared with", color: BASE, buckets: b.numeric.histogram });
      card.append(histogram(series, { testid: `hist-${tid(f.name)}`, label: `histogram of ${f.name}` }));
      if (n.quantiles?.length) {
        card.append(h("div", { class: "muted small" }, "quantiles (median in black)"), quantileStrip(n.quantiles, { testid: `quantiles-${tid(f.name)}`, color: CUR }));
      }
    } else if (f.string) {
      const st = f.string;
      row("unique", h("span", {}, num(st.unique, `stat-${tid(f.name)}-unique`), b?.string ? h("span", { class: "base" }, " vs ", num(b.string.unique)) : null));
      row("avg length", num(st.avg_length, `stat-${tid(f.name)}-avg_length`));
      card.append(dl);
      const tot = present || 1;
      const btot = basePresent || 1;
      const bmap = new Map((b?.string?.top_values ?? []).map((v) => [v.value, v.frequency]));
      const top = st.top_values.slice(0, 8);
      const rows = top.map((v) => ({
        label: v.value,
        values: b?.string ? [v.frequency / tot, (bmap.get(v.value) ?? 0) / btot] : [v.frequency / tot],
      }));
      card.append(h("div", { class: "muted small" }, `top values (share of the ${fmt(present)} rows with a value)`),
        hbars(rows, { testid: `top-${tid(f.name)}`, colors: b?.string ? [CUR, BASE] : [CUR], names: ["this span", "compared with"], format: (v) => `${fmt(v * 100, 3)}%` }));
      const topList = h("ol", { class: "topvals", "data-testid": `topvals-${tid(f.name)}` });
      for (const v of top) topList.append(h("li", {}, h("code", {}, v.value), " ", num(v.frequency, `top-${tid(f.name)}-${tid(v.value)}`)));
      card.append(h("details", {}, h("summary", {}, "counts"), topList));
    } else {
      card.append(dl);
    }
    return card;
  }
}
