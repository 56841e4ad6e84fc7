// What every view gets: its route's parameters, and a way to draw itself again.

export interface Route {
  /** The path segments after `#/`, decoded: `#/runs/p/r` -> ["runs", "p", "r"]. */
  parts: string[];
  query: URLSearchParams;
}

export interface Rendered {
  node: Node;
  /** Something shown is still running: draw again in 2 s. */
  live: boolean;
}

export interface View {
  title(): string;
  /** Fetches what the view shows and builds it anew; called again on every poll. */
  render(): Promise<Rendered>;
}

export interface App {
  /** Draws the current view again now (after a selection changed). */
  refresh(): void;
}

export function hashOf(parts: string[], query?: Record<string, string | number>): string {
  const q = query
    ? new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString()
    : "";
  return `#/${parts.map(encodeURIComponent).join("/")}${q ? `?${q}` : ""}`;
}
