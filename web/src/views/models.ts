// Models: the versions pushed to each destination with their blessing, a version's
// evaluation per slice against its baseline, and what `kiln serve` is serving now.

import { getJSON, type Evaluation, type ModelVersion, type PushedModel, type Serving } from "../api";
import { hashOf, type App, type Rendered, type View } from "../app";
import { PALETTE, hbars, legend } from "../charts";
import { badge, empty, fmt, fmtTime, h, lineageLink, link, num, s, section, tid } from "../dom";

const CAND = "#2563eb";
const BASE = "#9ca3af";
const HIGHER_BETTER = new Set(["auc", "auc_pr", "accuracy", "precision", "recall", "f1", "r2"]);
const LOWER_BETTER = new Set(["log_loss", "rmse", "mae", "mse", "loss"]);
const METRIC_ORDER = ["auc", "auc_pr", "accuracy", "log_loss", "precision", "recall", "f1", "calibration", "rmse", "mae", "mean_label", "mean_prediction"];

interface Window {
  version: number;
  requests: number;
  errors: number;
  error_rate: number;
  p99_seconds: number;
}

interface ServedModel {
  name: string;
  error?: string;
  status?: { model_version_status?: { version: string | number; state?: string; status?: { error_message?: string } }[] };
  traffic?: {
    split?: { key: string; version: number; share: number }[];
    canary_version?: number | null;
    stable_version?: number | null;
    sticky_header?: string;
    windows?: Window[];
    rolled_back?: { version: number; stable_version: number; time_ms: number; reason: string }[];
  } | null;
}

/** The models `GET /api/serving` reports (docs/ui.md), as `kiln serve` answered for each. */
function servedModels(serving: Serving): ServedModel[] {
  const models = (serving as { models?: unknown }).models;
  return Array.isArray(models) ? (models as ServedModel[]).filter((m) => m && typeof m.name === "string") : [];
}

export class ModelsView implements View {
  private selectedModel: number | null;
  private metric: string | null = null;

  constructor(
    query: URLSearchParams,
    private readonly app: App,
  ) {
    const m = query.get("model");
    this.selectedModel = m ? Number(m) : null;
  }

  title(): string {
    return "Models";
  }

  async render(): Promise<Rendered> {
    const root = h("div", { class: "view view-models" });
    root.append(h("h1", { tabindex: -1 }, "Models"));
    const [models, serving] = await Promise.all([
      getJSON<PushedModel[]>("models"),
      getJSON<Serving>("serving").catch((e: Error) => ({ error: e.message }) as Serving),
    ]);
    if (!models.length) {
      root.append(empty("Nothing pushed yet: a pipeline's `push` component (or `kiln push --to DIR`) makes versions."));
    }
    let selected: { model: PushedModel; v: ModelVersion } | null = null;
    for (const m of models) {
      for (const v of m.versions) {
        if (this.selectedModel !== null && v.model_id === this.selectedModel) selected = { model: m, v };
      }
    }
    if (!selected && models.length && models[0].versions.length) {
      selected = { model: models[0], v: models[0].versions[0] };
    }
    const servingNow = this.servingVersions(serving);

    for (const m of models) {
      const table = h("table", { class: "grid versions", "data-testid": `versions-${tid(m.name)}` },
        h("thead", {}, h("tr", {}, ...["version", "model", "pushed", "by", "blessing", "serving", ""].map((c) => h("th", { scope: "col" }, c)))));
      const tb = h("tbody");
      for (const v of m.versions) {
        const isSel = selected?.v === v;
        const serves = servingNow.get(m.name)?.get(v.version);
        tb.append(h("tr", { class: isSel ? "selected" : undefined, "data-testid": `version-${tid(m.name)}-${v.version}`, "data-model-id": v.model_id ?? "" },
          h("th", { scope: "row" }, num(v.version, `version-number-${tid(m.name)}-${v.version}`)),
          h("td", {}, v.model_id !== null ? lineageLink(v.model_id, `Model #${v.model_id}`, `version-lineage-${tid(m.name)}-${v.version}`) : "–",
            v.model_id !== null ? h("span", {}, " · ", link(hashOf(["training"], { model: v.model_id }), "curves")) : null),
          h("td", {}, fmtTime(v.pushed_ms)),
          h("td", {}, [v.user, v.host].filter(Boolean).join("@") || "–", v.forced ? h("span", { class: "badge st-held" }, "forced") : null),
          h("td", {}, v.blessed === null || v.blessed === undefined ? "–" : badge(v.blessed ? "blessed" : "not blessed", `version-blessed-${tid(m.name)}-${v.version}`)),
          h("td", {}, serves ? badge(serves, `version-serving-${tid(m.name)}-${v.version}`) : ""),
          h("td", {}, h("button", {
            type: "button",
            class: "linklike",
            "data-testid": `version-eval-${tid(m.name)}-${v.version}`,
            "data-key": `eval:${m.name}:${v.version}`,
            "aria-pressed": isSel ? "true" : "false",
            disabled: v.blessing_id === null,
            onclick: () => {
              this.selectedModel = v.model_id;
              this.app.refresh();
            },
          }, "evaluation")),
        ));
      }
      table.append(tb);
      root.append(section(`${m.name}`, h("p", { class: "muted" }, "pushed to ", h("code", {}, m.base_path)), table));
    }

    if (selected) root.append(await this.evaluation(selected.model, selected.v, models));
    root.append(this.serving(serving));
    return { node: root, live: false };
  }

  private async evaluation(m: PushedModel, v: ModelVersion, models: PushedModel[]): Promise<HTMLElement> {
    const box = section(`Evaluation of ${m.name} version ${v.version}`);
    box.setAttribute("data-testid", "evaluation");
    if (v.blessing_id === null) {
      box.append(empty("No evaluation recorded for this version."));
      return box;
    }
    let ev: Evaluation;
    try {
      ev = await getJSON<Evaluation>(`evaluations/${v.blessing_id}`);
    } catch (e) {
      box.append(empty(`Evaluation unavailable: ${(e as Error).message}`));
      return box;
    }
    const e = ev.evaluation ?? {};
    const bl = ev.blessing ?? {};
    box.append(h("p", { class: "facts" },
      badge(bl.status ?? (bl.blessed ? "BLESSED" : "NOT_BLESSED"), "blessing-status"), " ",
      "model ", v.model_id !== null ? lineageLink(v.model_id, `#${v.model_id}`, "eval-model-link") : "–",
      " · blessing ", lineageLink(v.blessing_id, `#${v.blessing_id}`, "eval-blessing-link"),
      e.rows !== undefined ? h("span", {}, " · ", num(e.rows as number, "eval-rows"), " rows") : null,
      " · baseline: ", this.baseline(e.baseline?.path ?? null, models)));
    const slices = e.slices ?? [];
    const metrics = [...new Set(slices.flatMap((sl) => Object.keys(sl.candidate?.metrics ?? {})))];
    metrics.sort((a, b) => {
      const ia = METRIC_ORDER.indexOf(a);
      const ib = METRIC_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    if (!this.metric || !metrics.includes(this.metric)) this.metric = metrics[0] ?? null;
    const hasBase = slices.some((sl) => sl.baseline);
    if (this.metric) {
      const metric = this.metric;
      const sel = h("select", { id: "sel-metric", "data-testid": "select-metric", "data-key": "sel-metric", onchange: (ev2: Event) => {
        this.metric = (ev2.target as HTMLSelectElement).value;
        this.app.refresh();
      } }, ...metrics.map((k) => h("option", { value: k, selected: k === metric }, k)));
      box.append(h("p", { class: "controls" }, h("label", { for: "sel-metric" }, "metric "), sel));
      const rows = slices.map((sl) => ({
        label: sl.slice,
        values: hasBase ? [sl.candidate?.metrics?.[metric] ?? null, sl.baseline?.metrics?.[metric] ?? null] : [sl.candidate?.metrics?.[metric] ?? null],
      }));
      box.append(legend([{ name: "candidate", color: CAND }, ...(hasBase ? [{ name: "baseline", color: BASE }] : [])], "eval-legend"),
        hbars(rows, { testid: "slice-chart", colors: hasBase ? [CAND, BASE] : [CAND], names: ["candidate", "baseline"], width: 560, labelWidth: 150 }));
    }
    // Every metric of every slice; the baseline's value under the candidate's.
    const table = h("table", { class: "grid slices", "data-testid": "slices-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "slice"), h("th", { scope: "col" }, "examples"), ...metrics.map((k) => h("th", { scope: "col" }, k)))));
    const tb = h("tbody");
    for (const sl of slices) {
      const st = tid(sl.slice);
      tb.append(h("tr", { "data-testid": `slice-${st}` },
        h("th", { scope: "row" }, sl.slice),
        h("td", {}, num(sl.example_count ?? null, `eval-count-${st}`)),
        ...metrics.map((k) => {
          const c = sl.candidate?.metrics?.[k] ?? null;
          const b = sl.baseline?.metrics?.[k] ?? null;
          const better = c === null || b === null || c === b ? null : HIGHER_BETTER.has(k) ? c > b : LOWER_BETTER.has(k) ? c < b : null;
          return h("td", { class: better === null ? undefined : better ? "better" : "worse" },
            num(c, `eval-${st}-${tid(k)}`),
            b !== null ? h("div", { class: "base small" }, "base ", num(b, `eval-base-${st}-${tid(k)}`)) : null);
        })));
    }
    table.append(tb);
    box.append(h("div", { class: "scroll-x" }, table));
    const checks = e.checks ?? [];
    if (checks.length) {
      const ul = h("ul", { class: "checks", "data-testid": "eval-checks" });
      for (const c of checks) {
        ul.append(h("li", {}, badge(c.status, undefined), " ", h("strong", {}, `${c.metric} on ${c.slice}`), ` (${c.kind}${c.threshold !== undefined && c.threshold !== null ? ` ${fmt(c.threshold)}` : ""}): `, c.reason ?? ""));
      }
      box.append(h("h3", {}, "checks"), ul);
    }
    return box;
  }

  /** The baseline model as a pushed version when it is one, else its path. */
  private baseline(path: string | null, models: PushedModel[]): Node {
    if (!path) return h("span", { "data-testid": "eval-baseline" }, "none (the first blessed model)");
    const norm = (p: string) => p.replace(/\/+$/, "");
    for (const m of models) {
      for (const v of m.versions) {
        if (v.model_uri && norm(v.model_uri) === norm(path) && v.model_id !== null) {
          return h("span", { "data-testid": "eval-baseline" }, `${m.name} version ${v.version} (`, lineageLink(v.model_id, `Model #${v.model_id}`), ")");
        }
      }
    }
    return h("code", { "data-testid": "eval-baseline" }, path);
  }

  /** model name -> version -> its state in `kiln serve` (AVAILABLE, LOADING, ...). */
  private servingVersions(serving: Serving): Map<string, Map<number, string>> {
    const out = new Map<string, Map<number, string>>();
    for (const m of servedModels(serving)) {
      const mv = new Map<number, string>();
      for (const st of m.status?.model_version_status ?? []) mv.set(Number(st.version), String(st.state ?? ""));
      out.set(m.name, mv);
    }
    return out;
  }

  private serving(serving: Serving): HTMLElement {
    const box = section("Serving now");
    box.setAttribute("data-testid", "serving");
    if (serving.configured === false) {
      box.append(empty("No server configured: start `kiln ui --serving http://HOST:PORT` to show what a `kiln serve` serves, its traffic split and rollbacks."));
      return box;
    }
    if (typeof serving.url === "string") box.append(h("p", { class: "muted" }, "from ", h("code", {}, serving.url)));
    if (typeof serving.error === "string") {
      box.append(h("p", { class: "bad", "data-testid": "serving-error" }, serving.error));
    }
    const models = servedModels(serving);
    if (!models.length && typeof serving.error !== "string") box.append(empty("The server serves none of this store's models."));
    for (const m of models) {
      const name = tid(m.name);
      box.append(h("h3", {}, m.name));
      if (m.error) box.append(h("p", { class: "bad" }, m.error));
      const ul = h("ul", { class: "chips", "data-testid": `serving-${name}` });
      for (const st of [...(m.status?.model_version_status ?? [])].sort((a, b) => Number(b.version) - Number(a.version))) {
        const err = st.status?.error_message;
        ul.append(h("li", { "data-testid": `serving-${name}-${st.version}` }, `version ${st.version} `, badge(String(st.state ?? "?")), err ? h("span", { class: "bad small" }, ` ${err}`) : null));
      }
      if (ul.childElementCount) box.append(ul);
      const t = m.traffic;
      if (t && Array.isArray(t.split) && t.split.length) {
        box.append(h("p", { class: "muted small" }, "traffic split",
          t.canary_version !== null && t.canary_version !== undefined ? ` · canary version ${t.canary_version}, stable version ${t.stable_version}` : "",
          t.sticky_header ? ` · sticky on ${t.sticky_header}` : ""),
        this.splitBar(t.split, `traffic-${name}`));
        if (t.windows?.length) {
          const wt = h("table", { class: "grid", "data-testid": `windows-${name}` },
            h("thead", {}, h("tr", {}, ...["version", "requests", "errors", "error rate", "p99"].map((c) => h("th", { scope: "col" }, c)))));
          const tb = h("tbody");
          for (const w of t.windows) {
            tb.append(h("tr", {}, h("td", {}, String(w.version)), h("td", {}, num(w.requests)), h("td", {}, num(w.errors)),
              h("td", {}, num(w.error_rate)), h("td", {}, num(w.p99_seconds * 1000, undefined, { suffix: " ms" }))));
          }
          wt.append(tb);
          box.append(wt);
        }
      }
      const rolled = t?.rolled_back ?? [];
      if (rolled.length) {
        const rl = h("ul", { class: "rollbacks", "data-testid": `rollbacks-${name}` });
        for (const r of rolled) rl.append(h("li", {}, badge("rolled back"), ` version ${r.version} → ${r.stable_version} at ${fmtTime(r.time_ms)}: ${r.reason}`));
        box.append(h("h3", {}, "rollbacks"), rl);
      }
    }
    box.append(h("details", {}, h("summary", {}, "as reported"), h("pre", { class: "log" }, JSON.stringify(serving, null, 2))));
    return box;
  }

  private splitBar(split: { key: string; version: number; share: number }[], testid: string): Node {
    const W = 560;
    const svg = s("svg", { "data-testid": testid, class: "chart", viewBox: `0 0 ${W} 24`, width: W, height: 24, role: "img", "aria-label": split.map((r) => `${r.key} v${r.version} ${fmt(r.share * 100, 3)}%`).join(", ") });
    let x = 0;
    split.forEach((r, i) => {
      const w = r.share * W;
      svg.append(s("rect", { x, y: 0, width: w, height: 24, fill: PALETTE[i % PALETTE.length], "data-value": r.share, "data-version": r.version }, s("title", {}, `${r.key}: version ${r.version}, ${fmt(r.share * 100, 3)}%`)));
      x += w;
    });
    return h("div", {}, svg, legend(split.map((r, i) => ({ name: `${r.key}: version ${r.version}, ${fmt(r.share * 100, 3)}%`, color: PALETTE[i % PALETTE.length] }))));
  }
}
