import { DEFAULT_POLICY } from "@proxyscale/core";
import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import FleetPage from "../src/pages/Fleet.tsx";
import { signOut } from "../src/session.ts";
import { type Answers, proxyView, renderPage, signInAs } from "./support.tsx";

// jsdom has no canvas for uPlot: the sparkline shows the points it was given instead.
vi.mock("../src/components/Chart.tsx", () => ({
  Sparkline: ({ values, label }: { values: { at: number; value: number }[]; label: string }) => (
    <figure>{`${label}: ${JSON.stringify(values)}`}</figure>
  ),
}));

function proxy(
  index: number,
  name: string,
  environment: string,
  region: string | null,
  currentReplicas: number,
) {
  return proxyView({
    id: `00000000-0000-4000-8000-00000000000${index}`,
    name,
    ownerId: "admin-user",
    environment,
    region,
    currentReplicas,
    desiredReplicas: currentReplicas,
  });
}

const fleet = [
  proxy(1, "edge-b", "production", "eu", 3),
  proxy(2, "edge-a", "staging", "us", 7),
  proxy(3, "edge-c", "production", "us", 1),
];

function answers(items: unknown[]): Answers {
  return {
    "proxies.list": { items, nextCursor: null },
    "policies.get": (input: unknown) => ({
      proxyId: (input as { proxyId: string }).proxyId,
      policy: DEFAULT_POLICY,
      source: "default",
    }),
    "scaling.decisions": { items: [], nextCursor: null },
    "metrics.range": (input: unknown) => ({
      proxyId: (input as { proxyId: string }).proxyId,
      from: 0,
      to: 1,
      columns: { at: [1], samples: [1], loadScore: [42.5] },
    }),
    "live.onChange": null,
  };
}

const names = () =>
  screen
    .getAllByRole("row")
    .slice(1)
    .map((row) => within(row).getAllByRole("cell")[0]!.textContent);

afterEach(() => signOut());

describe("the fleet page", () => {
  it("sorts by name, then by any column both ways, and marks the sorted column (aria-sort)", async () => {
    signInAs("admin");
    renderPage(<FleetPage />, { path: "/", url: "/", answers: answers(fleet) });
    await screen.findByText("edge-a");
    expect(names()).toEqual(["edge-a", "edge-b", "edge-c"]);
    fireEvent.click(screen.getByRole("button", { name: /Replicas/ }));
    expect(names()).toEqual(["edge-c", "edge-b", "edge-a"]);
    fireEvent.click(screen.getByRole("button", { name: /Replicas/ }));
    expect(names()).toEqual(["edge-a", "edge-b", "edge-c"]);
    expect(screen.getByRole("columnheader", { name: /Replicas/ }).getAttribute("aria-sort")).toBe(
      "descending",
    );
  });

  it("loads the next page of proxies with the server's cursor, and hides the button after the last page", async () => {
    signInAs("admin");
    const pages = answers([]);
    pages["proxies.list"] = (input: unknown) =>
      (input as { cursor?: string }).cursor === "page-2"
        ? { items: [fleet[2]], nextCursor: null }
        : { items: [fleet[0], fleet[1]], nextCursor: "page-2" };
    renderPage(<FleetPage />, { path: "/", url: "/", answers: pages });
    await screen.findByText("edge-a");
    expect(names()).toEqual(["edge-a", "edge-b"]);
    fireEvent.click(screen.getByRole("button", { name: "Load more proxies" }));
    await screen.findByText("edge-c");
    expect(names()).toEqual(["edge-a", "edge-b", "edge-c"]);
    expect(screen.queryByRole("button", { name: "Load more proxies" })).toBeNull();
  });

  it("asks each proxy's sparkline range for the load score alone, and shows its last value when no decision has one", async () => {
    signInAs("admin");
    const { calls } = renderPage(<FleetPage />, { path: "/", url: "/", answers: answers(fleet) });
    await screen.findByText("edge-a");
    await waitFor(() => expect(screen.getAllByText("42.5")).toHaveLength(3));
    expect(screen.getByText('load score of edge-a over the last hour: [{"at":1,"value":42.5}]')).toBeTruthy();
    const ranges = calls.filter((call) => call.path === "metrics.range");
    expect(ranges).toHaveLength(3);
    for (const range of ranges) expect((range.input as { fields: string[] }).fields).toEqual(["loadScore"]);
  });

  it("filters by environment and region", async () => {
    signInAs("admin");
    renderPage(<FleetPage />, { path: "/", url: "/?region=us", answers: answers(fleet) });
    await screen.findByText("edge-a");
    expect(names()).toEqual(["edge-a", "edge-c"]);
    fireEvent.change(screen.getByLabelText("Environment"), { target: { value: "production" } });
    expect(names()).toEqual(["edge-c"]);
  });

  it("an empty fleet says how to register a proxy", async () => {
    signInAs("operator");
    renderPage(<FleetPage />, { path: "/", url: "/", answers: answers([]) });
    await screen.findByText(/No proxies yet/);
    expect(screen.getByText("npm run -s proxyscale -- proxies create --name edge-eu")).toBeTruthy();
    expect(screen.getByText(/client\.proxies\.register\.mutate/)).toBeTruthy();
  });
});
