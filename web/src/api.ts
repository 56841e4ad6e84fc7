// The JSON API of `kiln ui` (docs/ui.md): typed fetches, relative to the page so the app
// works wherever it is served from.

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function request(path: string): Promise<Response> {
  const r = await fetch(`api/${path}`, { cache: "no-store" });
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const j = await r.json();
      if (j && typeof j.error === "string") msg = j.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(r.status, msg);
  }
  return r;
}

export async function getJSON<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

export async function getText(path: string): Promise<string> {
  return (await request(path)).text();
}

export const enc = encodeURIComponent;

export interface Summary {
  store: string;
  pipelines: number;
  runs: number;
  models: number;
  artifacts: number;
}

export interface RunListEntry {
  pipeline: string;
  run_id: string;
  state: string;
  started_ms: number | null;
  seconds: number | null;
  run_dir: string;
  components: Record<string, number>;
}

export interface Component {
  name: string;
  kind: string;
  state: string;
  seconds: number;
  attempts: number;
  upstream?: string[];
  note?: string;
  outputs?: Record<string, string>;
  execution_id?: number;
  drift?: string[];
  exit_code?: number;
}

export interface Run {
  pipeline: string;
  run_id: string;
  state: string;
  seconds?: number;
  run_dir?: string;
  held_by?: string;
  stopped_by?: string;
  approved?: boolean;
  components: Component[];
}

export type Props = Record<string, string | number | boolean | null>;

export interface Artifact {
  id: number;
  type: string;
  uri: string;
  create_time_ms: number;
  properties: Props;
  custom_properties: Props;
  name?: string | null;
  state?: string;
}

export interface Execution {
  id: number;
  type: string;
  state?: string;
  create_time_ms?: number;
  properties?: Props;
  custom_properties?: Props;
  name?: string | null;
}

export interface Context {
  id: number;
  type: string;
  name: string;
}

export interface ArtifactDetail {
  artifact: Artifact;
  produced_by: Execution | null;
  contexts: Context[];
}

export interface Bucket {
  low: number;
  high: number;
  count: number;
}

export interface FeatureStats {
  name: string;
  type: string;
  num_missing: number;
  missing_pct: number;
  numeric?: {
    mean: number;
    std_dev: number;
    min: number;
    median: number;
    max: number;
    num_zeros: number;
    histogram: Bucket[];
    quantiles: Bucket[];
  };
  string?: {
    unique: number;
    avg_length: number;
    top_values: { value: string; frequency: number }[];
  };
}

export interface Statistics {
  datasets: { name: string; num_examples: number; features: FeatureStats[] }[];
}

export interface Drift {
  split: string;
  features: { name: string; type: string; measure: string; score: number }[];
}

export interface AnomalyInfo {
  description?: string;
  severity?: string;
  short_description?: string;
  reason?: { type?: string; short_description?: string; description?: string }[];
}

export interface Anomalies {
  anomaly_info?: Record<string, AnomalyInfo>;
  dataset_anomaly_info?: AnomalyInfo;
  drift_skew_info?: {
    path?: { step?: string[] };
    drift_measurements?: { type: string; value: number; threshold: number }[];
  }[];
}

export interface TrainingEntry {
  execution_id: number;
  run: string;
  pipeline: string;
  model_id: number | null;
  model_uri: string | null;
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

export type Scalars = Record<string, [number, number, number][]>;

export interface ModelVersion {
  version: number;
  model_id: number | null;
  model_uri: string | null;
  pushed_ms: number | null;
  user?: string | null;
  host?: string | null;
  forced?: boolean | number | null;
  blessing_id: number | null;
  blessed: boolean | null;
}

export interface PushedModel {
  name: string;
  base_path: string;
  versions: ModelVersion[];
}

export interface SliceMetrics {
  metrics: Record<string, number | null>;
  confusion_matrix?: Record<string, number>;
}

export interface EvaluationSlice {
  slice: string;
  spec?: string | null;
  example_count?: number;
  candidate?: SliceMetrics;
  baseline?: SliceMetrics;
  changes?: Record<string, unknown>;
}

export interface Check {
  slice: string;
  metric: string;
  kind: string;
  status: string;
  threshold?: number | null;
  value?: number | null;
  reason?: string;
}

export interface Evaluation {
  evaluation: {
    slices?: EvaluationSlice[];
    checks?: Check[];
    baseline?: { path?: string } | null;
    candidate?: { path?: string } | null;
    rows?: number;
    label?: string;
    [k: string]: unknown;
  };
  blessing: { status?: string; blessed?: boolean; failing_checks?: unknown[]; [k: string]: unknown };
}

export type Serving = Record<string, unknown>;

export interface LineageEvent {
  artifact_id: number;
  execution_id: number;
  type: string;
  path?: string;
}

export interface Lineage {
  artifacts: Artifact[];
  executions: Execution[];
  events: LineageEvent[];
}
