// Drives kiln ui in headless Chromium (Debian's /usr/bin/chromium, through playwright-core)
// and checks what each view shows against values read from the artifacts by the caller
// (tests/test_ui_browser.py writes them to a JSON file).
//
//   node web/tests/browser.mjs --url http://127.0.0.1:PORT/ --expect expected.json --out DIR
//
// Prints one JSON line {"ok", "failures", "steps", "seen"} and exits 0 only when every check
// passed. Saves a 1280x800 screenshot per view into DIR (and run-live.png: a run going on).

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (fallback !== undefined) return fallback;
    throw new Error(`missing --${name}`);
  }
  return process.argv[i + 1];
}

const base = arg("url").replace(/\/?$/, "/");
const E = JSON.parse(fs.readFileSync(arg("expect"), "utf8"));
const outDir = arg("out");
const browserPath = arg("chromium", "/usr/bin/chromium");
const budgetMs = Number(arg("budget-ms", "50000"));
fs.mkdirSync(outDir, { recursive: true });

const failures = [];
const steps = [];
const seen = {};
const t0 = Date.now();
let currentStep = "start";

function check(cond, msg) {
  if (!cond) failures.push(`${currentStep}: ${msg}`);
  return cond;
}

function near(a, b, rel = 1e-9) {
  if (typeof a !== "number" || typeof b !== "number" || Number.isNaN(a) || Number.isNaN(b)) return false;
  return Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));
}

function finish(code) {
  process.stdout.write(`${JSON.stringify({ ok: failures.length === 0 && code === 0, failures, steps, seen })}\n`);
  process.exit(code || (failures.length ? 1 : 0));
}

const watchdog = setTimeout(() => {
  failures.push(`${currentStep}: gave up after ${budgetMs} ms`);
  finish(2);
}, budgetMs);

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-ui-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: browserPath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1280, height: 800 },
  timeout: 20000,
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(10000);
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
page.on("console", (m) => {
  if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
});
// The app must not reach anything but the server it came from.
const foreign = [];
page.on("request", (r) => {
  if (!r.url().startsWith(base) && !r.url().startsWith("data:")) foreign.push(r.url());
});

async function step(name, fn) {
  currentStep = name;
  const s = Date.now();
  try {
    await fn();
  } catch (e) {
    failures.push(`${name}: ${e.message.split("\n")[0]}`);
  }
  steps.push({ name, ms: Date.now() - s });
}

/** Waits until the view for `hash` has drawn itself. */
async function ready(hashPrefix) {
  await page.waitForFunction(
    (p) => location.hash.startsWith(p) && document.querySelector("main")?.dataset.ready === location.hash,
    hashPrefix,
  );
}

const byTid = (t) => `[data-testid="${t}"]`;

async function dataValue(testid) {
  const el = page.locator(byTid(testid));
  if ((await el.count()) !== 1) return undefined;
  return el.getAttribute("data-value");
}

async function numberOf(testid) {
  const v = await dataValue(testid);
  return v === undefined || v === null || v === "" ? NaN : Number(v);
}

async function textOf(testid) {
  const el = page.locator(byTid(testid));
  if ((await el.count()) !== 1) return undefined;
  return (await el.innerText()).trim();
}

/** The marks (rect, path, circle) an SVG chart drew. */
async function marks(testid) {
  return page.evaluate((t) => {
    const svg = document.querySelector(`svg[data-testid="${t}"]`);
    if (!svg) return { rect: -1, path: -1, circle: -1 };
    return {
      rect: svg.querySelectorAll("rect").length,
      path: svg.querySelectorAll("path").length,
      circle: svg.querySelectorAll("circle").length,
    };
  }, testid);
}

async function shot(name) {
  await page.mouse.move(1279, 799);  // no hover effects in the picture
  await page.screenshot({ path: path.join(outDir, `${name}.png`) });
}

const tid = (s) => String(s).replace(/[^A-Za-z0-9_.-]/g, "_");

try {
  await step("runs", async () => {
    await page.goto(`${base}#/runs`);
    await ready("#/runs");
    for (const r of E.runs) {
      check((await textOf(`run-state-${tid(r.run_id)}`)) === r.state, `run ${r.run_id} shows state ${await textOf(`run-state-${tid(r.run_id)}`)}, want ${r.state}`);
      const m = await marks(`run-bar-${tid(r.run_id)}`);
      check(m.rect > 0, `run ${r.run_id}: state bar has no bars`);
    }
    check((await numberOf("summary-runs")) === E.runs.length, `summary shows ${await numberOf("summary-runs")} runs, want ${E.runs.length}`);
    await shot("runs");
  });

  await step("keyboard to a run", async () => {
    // Tab from the page's heading to the run's link, then Enter.
    const want = `run-link-${tid(E.run.run_id)}`;
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      await page.keyboard.press("Tab");
      found = (await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))) === want;
    }
    check(found, `Tab never reached ${want}`);
    // The focused link shows a visible focus ring.
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    check(outline !== "none", `focused link has no outline (${outline})`);
    await page.keyboard.press("Enter");
    await ready(`#/runs/${encodeURIComponent(E.run.pipeline)}/${encodeURIComponent(E.run.run_id)}`);
  });

  await step("run", async () => {
    check((await textOf("run-state")) === E.run.state, `run state ${await textOf("run-state")}, want ${E.run.state}`);
    check(near(await numberOf("run-seconds"), E.run.seconds), `run seconds ${await numberOf("run-seconds")}, want ${E.run.seconds}`);
    const m = await marks("dag");
    const names = Object.keys(E.run.components);
    check(m.rect >= names.length, `DAG has ${m.rect} rects for ${names.length} components`);
    check(m.path >= E.run.edges, `DAG has ${m.path} paths, want at least ${E.run.edges} edges`);
    for (const [name, st] of Object.entries(E.run.components)) {
      const got = await page.locator(byTid(`dag-node-${tid(name)}`)).getAttribute("data-state");
      check(got === st, `DAG node ${name} is ${got}, want ${st}`);
      check(near(await numberOf(`comp-seconds-${tid(name)}`), E.run.seconds_of[name]), `${name} seconds ${await numberOf(`comp-seconds-${tid(name)}`)}, want ${E.run.seconds_of[name]}`);
    }
    const d = await marks("durations");
    check(d.rect > 0, "durations chart is empty");
    await shot("run");
  });

  await step("keyboard on the DAG", async () => {
    // Enter on a focused DAG node selects it and shows its log.
    const node = page.locator(byTid(`dag-node-${tid(E.run.log_component)}`));
    await node.focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction((c) => document.querySelector('[data-testid="component-details"] h2')?.textContent === c, E.run.log_component);
    await page.waitForSelector(byTid("component-log"));
    const log = await page.locator(byTid("component-log")).innerText();
    check(log.trim() === E.run.log.trim(), `log of ${E.run.log_component} differs from its log.txt (${log.length} vs ${E.run.log.length} chars)`);
  });

  await step("run to model", async () => {
    await page.locator(byTid("run-model-link")).first().click();
    await ready("#/models");
    const row = page.locator(byTid(`version-${tid(E.models.name)}-${E.models.version}`));
    check((await row.getAttribute("class"))?.includes("selected"), "the run's model version is not selected");
    check(Number(await row.getAttribute("data-model-id")) === E.models.model_id, `version row holds model ${await row.getAttribute("data-model-id")}, want ${E.models.model_id}`);
    check((await textOf("blessing-status")) === E.models.blessing_status, `blessing ${await textOf("blessing-status")}, want ${E.models.blessing_status}`);
    const st = tid(E.models.slice);
    check(near(await numberOf(`eval-${st}-auc`), E.models.auc), `${E.models.slice} auc ${await numberOf(`eval-${st}-auc`)}, want ${E.models.auc}`);
    check(near(await numberOf(`eval-base-${st}-auc`), E.models.baseline_auc), `${E.models.slice} baseline auc ${await numberOf(`eval-base-${st}-auc`)}, want ${E.models.baseline_auc}`);
    check(near(await numberOf(`eval-count-${st}`), E.models.example_count), `${E.models.slice} examples ${await numberOf(`eval-count-${st}`)}, want ${E.models.example_count}`);
    const m = await marks("slice-chart");
    check(m.rect >= 2, `slice chart has ${m.rect} bars`);
    if (E.serving) {
      // What kiln serve reports: each version's state, and the traffic split's shares.
      const name = tid(E.serving.model);
      for (const [v, st] of Object.entries(E.serving.versions)) {
        check((await textOf(`version-serving-${name}-${v}`)) === st, `version ${v} serving state ${await textOf(`version-serving-${name}-${v}`)}, want ${st}`);
      }
      const shares = await page.evaluate((t) => Object.fromEntries([...document.querySelectorAll(`svg[data-testid="${t}"] rect`)].map((r) => [r.getAttribute("data-version"), Number(r.getAttribute("data-value"))])), `traffic-${name}`);
      for (const [v, share] of Object.entries(E.serving.shares)) {
        check(near(shares[v], share), `version ${v} gets ${shares[v]} of the traffic, want ${share}`);
      }
      check(Object.keys(shares).length === Object.keys(E.serving.shares).length, `split has versions ${Object.keys(shares)}`);
    }
    await shot("models");
  });

  await step("model to lineage", async () => {
    await page.locator(byTid(`version-lineage-${tid(E.models.name)}-${E.models.version}`)).click();
    await ready(`#/lineage/${E.models.model_id}`);
    const root = page.locator(byTid(`lineage-node-${E.models.model_id}`));
    check((await root.count()) === 1, "the model is not in its lineage graph");
    check((await root.getAttribute("class"))?.includes("root"), "the model is not the graph's root");
    check((await textOf("artifact-uri")) === E.models.model_uri, `uri ${await textOf("artifact-uri")}, want ${E.models.model_uri}`);
    const m = await marks("lineage-graph");
    check(m.rect >= 3 && m.path >= 2, `lineage graph has ${m.rect} rects, ${m.path} paths`);
    for (const id of E.lineage.neighbours) {
      check((await page.locator(byTid(`lineage-node-${id}`)).count()) === 1, `artifact ${id} missing from the lineage`);
    }
    await shot("lineage");
  });

  await step("data", async () => {
    await page.locator(byTid("nav-data")).click();
    await ready("#/data");
    for (const [split, n] of Object.entries(E.data.num_examples)) {
      check((await numberOf(`num-examples-${tid(split)}`)) === n, `${split} has ${await numberOf(`num-examples-${tid(split)}`)} examples, want ${n}`);
    }
    for (const [k, v] of Object.entries(E.data.stats)) {
      check(near(await numberOf(k), v), `${k} is ${await numberOf(k)}, want ${v}`);
    }
    for (const f of E.data.anomalies) {
      check((await page.locator(byTid(`anomaly-${tid(f)}`)).count()) === 1, `anomaly of ${f} not shown`);
      check((await page.locator(byTid(`feature-row-${tid(f)}`)).getAttribute("class"))?.includes("anomaly"), `row of ${f} not highlighted`);
    }
    for (const [f, v] of Object.entries(E.data.drift)) {
      check(near(await numberOf(`drift-${tid(f)}`), v, 1e-6), `drift of ${f} is ${await numberOf(`drift-${tid(f)}`)}, want ${v}`);
    }
    const h = await marks(`hist-${tid(E.data.numeric_feature)}`);
    check(h.rect > 0, `histogram of ${E.data.numeric_feature} is empty`);
    const t = await marks(`top-${tid(E.data.string_feature)}`);
    check(t.rect > 0, `top values of ${E.data.string_feature} are empty`);
    await shot("data");
  });

  await step("training", async () => {
    await page.locator(byTid("nav-training")).click();
    await ready("#/training");
    await page.waitForSelector(byTid("curve-train_loss"));
    const series = await page.evaluate(() => [...document.querySelectorAll('svg[data-testid="curve-train_loss"] g[data-series]')].map((g) => g.getAttribute("data-series")));
    for (const run of E.training.runs) {
      check(series.some((s) => s.startsWith(`${run} `) || s === run), `train/loss has no curve of ${run} (has ${series})`);
    }
    const m = await marks("curve-train_loss");
    check(m.path === series.length && m.circle === E.training.loss_points, `train/loss has ${m.path} lines, ${m.circle} points; want ${series.length} lines, ${E.training.loss_points} points`);
    for (const [k, v] of Object.entries(E.training.hyperparameters)) {
      const got = await page.evaluate(([run, key]) => {
        const el = [...document.querySelectorAll(`[data-testid^="hp-${run}-"]`)].find((e) => e.getAttribute("data-testid").endsWith(key));
        return el ? el.getAttribute("data-value") : null;
      }, [tid(E.training.run), tid(k)]);
      check(got !== null && (typeof v === "number" ? near(Number(got), v) : got === String(v)), `hyperparameter ${k} of ${E.training.run} is ${got}, want ${v}`);
    }
    await shot("training");
  });

  if (E.live) {
    await step("live run", async () => {
      const child = spawn(E.live.cmd[0], E.live.cmd.slice(1), { cwd: E.live.cwd, stdio: "ignore" });
      const exited = new Promise((res) => child.on("exit", (code) => res(code)));
      // Wait for the run to be in the store, then watch it without reloading.
      const deadline = Date.now() + 20000;
      let listed = false;
      while (!listed && Date.now() < deadline) {
        const runs = await (await fetch(`${base}api/runs`)).json();
        listed = runs.some((r) => r.run_id === E.live.run_id);
        if (!listed) await new Promise((r) => setTimeout(r, 100));
      }
      check(listed, `run ${E.live.run_id} never listed`);
      await page.goto(`${base}#/runs/${encodeURIComponent(E.live.pipeline)}/${encodeURIComponent(E.live.run_id)}`);
      await ready("#/runs/");
      await page.evaluate(() => (window.__kilnMarker = 1));
      const states = new Set();
      const snapshots = new Set();
      let state = "";
      while (Date.now() < deadline + 25000) {
        state = (await textOf("run-state")) ?? "";
        if (state === "running" && !states.has("running")) await shot("run-live");
        states.add(state);
        snapshots.add(await page.evaluate(() => [...document.querySelectorAll("svg[data-testid=dag] g.node")].map((n) => n.getAttribute("data-state")).join(",")));
        if (state && state !== "running") break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const code = await exited;
      seen.live_exit_code = code;
      seen.live_final_state = state;
      seen.live_states = [...states];
      check(states.has("running"), `never showed the run running (saw ${[...states]})`);
      check(snapshots.size >= 2, `the DAG never changed while the run went on (${snapshots.size} states)`);
      check((await page.evaluate(() => window.__kilnMarker)) === 1, "the page reloaded");
    });
  }

  currentStep = "page";
  check(pageErrors.length === 0, `page errors: ${pageErrors.join("; ")}`);
  check(foreign.length === 0, `requests to other hosts: ${foreign.join(", ")}`);
} finally {
  clearTimeout(watchdog);
  steps.push({ name: "total", ms: Date.now() - t0 });
  await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
finish(0);
