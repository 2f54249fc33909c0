import { DEFAULT_POLICY } from "@proxyscale/core";
import { fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import SimulatePage from "../src/pages/Simulate.tsx";
import { signOut } from "../src/session.ts";
import { type Answers, renderPage, signInAs } from "./support.tsx";

const proxyId = "00000000-0000-4000-8000-000000000001";
const proxy = { id: proxyId, name: "edge-1", environment: "production" };
const answers = (simulateHistory: Answers[string]): Answers => ({
  "proxies.list": { items: [proxy], nextCursor: null },
  "policies.get": { proxyId, policy: DEFAULT_POLICY, source: "default" },
  "policies.listPresets": { presets: [] },
  "scaling.simulateHistory": simulateHistory,
});

afterEach(() => signOut());

describe("the simulator page", () => {
  it("replays the linked proxy's chosen window and puts the server's 400 issues under the fields they name", async () => {
    signInAs("admin");
    const { calls } = renderPage(<SimulatePage />, {
      path: "/simulate",
      url: `/simulate?proxy=${proxyId}&window=1h`,
      answers: answers({
        error: {
          httpStatus: 400,
          message: "Invalid input",
          zodIssues: [
            { path: ["policies", 1, "policy", "maxReplicas"], message: "exceeds the tier's cap (20)" },
            { path: ["to"], message: "the window must hold at least one whole minute" },
            { path: ["proxyId"], message: "must be a UUID" },
          ],
        },
      }),
    });
    const run = await screen.findByRole("button", { name: "Run simulation" });
    await waitFor(() => expect(run).toHaveProperty("disabled", false));
    fireEvent.click(run);

    await waitFor(() =>
      expect(document.getElementById("policy-B-maxReplicas-error")?.textContent).toBe(
        "exceeds the tier's cap (20)",
      ),
    );
    expect(document.getElementById("policy-A-maxReplicas-error")).toBeNull();
    expect(document.getElementById("simulate-window-error")?.textContent).toBe(
      "to: the window must hold at least one whole minute",
    );
    expect(screen.getByText("proxyId: must be a UUID")).toBeTruthy();

    const request = calls.find((call) => call.path === "scaling.simulateHistory")?.input as {
      proxyId: string;
      from: number;
      to: number;
      policies: { name: string; policy: unknown }[];
    };
    expect(request.proxyId).toBe(proxyId);
    expect(request.to - request.from).toBe(3_600_000);
    expect(request.policies.map((entry) => entry.name)).toEqual(["current", "candidate"]);
    expect(request.policies[1]?.policy).toEqual(DEFAULT_POLICY);
  });
});
