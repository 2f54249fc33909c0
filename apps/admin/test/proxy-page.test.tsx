import { DEFAULT_POLICY } from "@proxyscale/core";
import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { signOut } from "../src/session.ts";
import { type Answers, proxyView, renderApp, signInAs } from "./support.tsx";

// uPlot needs a canvas jsdom lacks: each chart shows its title and its series' values (after the x values).
vi.mock("../src/components/Chart.tsx", () => ({
  Chart: ({ title, data }: { title: string; data: unknown[][] }) => (
    <figure>{`${title}: ${JSON.stringify(data.slice(1))}`}</figure>
  ),
}));

const PROXY_ID = "00000000-0000-4000-8000-000000000001";

/** A range answered like the server: `at`, `samples` and only the asked value columns. */
function range(input: unknown) {
  const { from, to, fields } = input as { from: number; to: number; fields?: string[] };
  return {
    proxyId: PROXY_ID,
    from,
    to,
    columns: {
      at: [to - 60_000],
      samples: [3],
      ...Object.fromEntries((fields ?? []).map((name) => [name, [1]])),
    },
  };
}

const answers: Answers = {
  "proxies.get": proxyView({ id: PROXY_ID, name: "edge-a", ownerId: "admin-user" }),
  "policies.get": { proxyId: PROXY_ID, policy: DEFAULT_POLICY, source: "default" },
  "metrics.range": range,
  "scaling.decisions": { items: [], nextCursor: null },
  "scaling.events": { items: [], nextCursor: null },
  "live.onChange": null,
};

afterEach(() => signOut());

describe("the proxy page", () => {
  it("asks the range once, for exactly the fields its charts draw, the loader's prefetch being the page's query", async () => {
    signInAs("admin");
    const { calls } = renderApp(`/proxies/${PROXY_ID}`, answers);
    // Every chart draws its field's value of the one interval: none found its field missing from the answer.
    for (const chart of [
      "Load score with thresholds: [[1]]",
      "CPU % vs targetCpuPercent: [[1]]",
      "Memory % vs targetMemoryPercent: [[1]]",
      "Request rate vs targetRequestRate: [[1]]",
      "Latency ms vs targetLatencyMs: [[1]]",
      "Replicas: current vs desired, with scaling events: [[1],[null],[null]]",
    ]) {
      expect(await screen.findByText(chart)).toBeTruthy();
    }
    const ranges = calls.filter((call) => call.path === "metrics.range");
    expect(ranges).toHaveLength(1);
    expect([...(ranges[0]!.input as { fields: string[] }).fields].sort()).toEqual([
      "avgLatencyMs",
      "cpuPercent",
      "loadScore",
      "memoryPercent",
      "replicas",
      "requestRate",
    ]);
  });
});
