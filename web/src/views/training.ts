// Training: loss and metric curves from the models' TensorBoard event files, several runs
// overlaid, and a table of hyperparameters and final metrics across runs.

import { getJSON, type RunListEntry, type Scalars, type TrainingEntry } from "../api";
import { hashOf, type App, type Rendered, type View } from "../app";
import { PALETTE, legend, lineChart } from "../charts";
import { empty, flatten, h, lineageLink, link, section, tid, value } from "../dom";

const DEFAULT_SHOWN = 6;

/** A dotted key that may wrap after its dots (model.learning_rate). */
function breakable(k: string): string {
  return k.replace(/\./g, ".\u200b");
}

function tagOrder(a: string, b: string): number {
  const rank = (t: string) => (t.includes("loss") && t.startsWith("train") ? 0 : t.startsWith("train") ? 1 : t.startsWith("eval") ? 2 : 3);
  return rank(a) - rank(b) || a.localeCompare(b);
}

export class TrainingView implements View {
  private shown: Set<number> | null = null;
  private cache = new Map<number, Scalars>();

  constructor(
    private readonly query: URLSearchParams,
    private readonly app: App,
  ) {}

  title(): string {
    return "Training";
  }

  async render(): Promise<Rendered> {
    const root = h("div", { class: "view view-training" });
    root.append(h("h1", { tabindex: -1 }, "Training"));
    const [all, runs] = await Promise.all([getJSON<TrainingEntry[]>("training"), getJSON<RunListEntry[]>("runs")]);
    // A cached trainer execution names the model an earlier one made: one row per model.
    const seen = new Set<number>();
    const entries = all.filter((e) => e.model_id === null || (!seen.has(e.model_id) && seen.add(e.model_id)));
    const live = runs.some((r) => r.state === "running");
    if (!entries.length) {
      root.append(empty("No trainer has run in this store yet."));
      return { node: root, live };
    }
    const focus = Number(this.query.get("model") ?? NaN);
    if (!this.shown) {
      this.shown = new Set(entries.slice(0, DEFAULT_SHOWN).map((e) => e.execution_id));
      const f = entries.find((e) => e.model_id === focus);
      if (f) this.shown.add(f.execution_id);
    }
    const color = new Map(entries.map((e, i) => [e.execution_id, PALETTE[i % PALETTE.length]]));
    const label = (e: TrainingEntry) => `${e.run ?? "?"}${e.pipeline ? ` (${e.pipeline})` : ""}`;

    // Which runs' curves to overlay.
    const picks = h("fieldset", { class: "picks", "data-testid": "training-picks" }, h("legend", {}, "Runs shown"));
    for (const e of entries) {
      const id = `pick-${e.execution_id}`;
      const box = h("input", {
        type: "checkbox",
        id,
        checked: this.shown.has(e.execution_id),
        "data-testid": `pick-${tid(e.run ?? String(e.execution_id))}`,
        "data-key": id,
        onchange: (ev: Event) => {
          if ((ev.target as HTMLInputElement).checked) this.shown!.add(e.execution_id);
          else this.shown!.delete(e.execution_id);
          this.app.refresh();
        },
      });
      picks.append(h("label", { for: id, class: "pick" }, box, h("span", { class: "swatch", style: `background:${color.get(e.execution_id)}` }), label(e)));
    }
    root.append(picks);

    const shown = entries.filter((e) => this.shown!.has(e.execution_id) && e.model_id !== null);
    await Promise.all(
      shown.map(async (e) => {
        if (this.cache.has(e.model_id!) && !live) return;
        try {
          this.cache.set(e.model_id!, await getJSON<Scalars>(`training/${e.model_id}/scalars`));
        } catch {
          this.cache.set(e.model_id!, {});
        }
      }),
    );
    const tags = [...new Set(shown.flatMap((e) => Object.keys(this.cache.get(e.model_id!) ?? {})))].sort(tagOrder);
    const charts = h("div", { class: "cards charts" });
    for (const tag of tags) {
      const series = shown
        .filter((e) => this.cache.get(e.model_id!)?.[tag]?.length)
        .map((e) => ({ name: label(e), color: color.get(e.execution_id)!, points: this.cache.get(e.model_id!)![tag].map((p) => [p[0], p[2]] as [number, number]) }));
      charts.append(h("article", { class: "card", "data-testid": `curve-card-${tid(tag)}` }, h("h3", {}, tag),
        lineChart(series, { testid: `curve-${tid(tag)}`, xLabel: "step", label: `${tag} by step`, width: 300, height: 190 })));
    }
    root.append(section("Curves", legend(shown.map((e) => ({ name: label(e), color: color.get(e.execution_id)! })), "training-legend"),
      tags.length ? charts : empty("No scalars in the shown runs' event files.")));

    // Hyperparameters and final metrics: one row per run; a column whose values differ
    // between runs is marked.
    const hp = entries.map((e) => flatten((e.hyperparameters ?? {}) as Record<string, unknown>));
    const mt = entries.map((e) => flatten((e.metrics ?? {}) as Record<string, unknown>));
    const hpKeys = [...new Set(hp.flatMap((x) => Object.keys(x)))].sort();
    const mtKeys = [...new Set(mt.flatMap((x) => Object.keys(x)))].sort();
    const differs = (rows: Record<string, unknown>[], k: string) => new Set(rows.map((r) => JSON.stringify(r[k] ?? null))).size > 1;
    const table = h("table", { class: "grid hparams", "data-testid": "hparams-table" });
    table.append(h("thead", {},
      h("tr", {}, h("th", { scope: "col", rowspan: 2 }, "run"), h("th", { scope: "col", rowspan: 2 }, "model"),
        hpKeys.length ? h("th", { scope: "colgroup", colspan: hpKeys.length }, "hyperparameters") : null,
        mtKeys.length ? h("th", { scope: "colgroup", colspan: mtKeys.length, class: "sep" }, "final metrics") : null),
      h("tr", {}, ...hpKeys.map((k) => h("th", { scope: "col", class: differs(hp, k) ? "differs" : undefined }, breakable(k))),
        ...mtKeys.map((k, i) => h("th", { scope: "col", class: `${i === 0 ? "sep" : ""}${differs(mt, k) ? " differs" : ""}` }, breakable(k))))));
    const tb = h("tbody");
    entries.forEach((e, i) => {
      const r = tid(e.run ?? String(e.execution_id));
      tb.append(h("tr", { class: e.model_id === focus ? "selected" : undefined, "data-testid": `hparams-row-${r}` },
        h("th", { scope: "row" }, h("span", { class: "swatch", style: `background:${color.get(e.execution_id)}` }), " ",
          link(hashOf(["runs", e.pipeline ?? "", e.run ?? ""]), e.run ?? "?", { title: label(e) })),
        h("td", {}, e.model_id !== null ? lineageLink(e.model_id, `#${e.model_id}`, `training-model-${r}`) : "–"),
        ...hpKeys.map((k) => h("td", { class: differs(hp, k) ? "differs" : undefined }, value(hp[i][k], `hp-${r}-${tid(k)}`))),
        ...mtKeys.map((k, j) => h("td", { class: `${j === 0 ? "sep" : ""}${differs(mt, k) ? " differs" : ""}` }, value(mt[i][k], `metric-${r}-${tid(k)}`)))));
    });
    table.append(tb);
    root.append(section("Hyperparameters and final metrics", h("div", { class: "scroll-x" }, table)));
    return { node: root, live };
  }
}
