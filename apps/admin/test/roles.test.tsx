import { DEFAULT_POLICY, POLICY_MODES } from "@proxyscale/core";
import { screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { ProxyTabs } from "../src/components/ProxyTabs.tsx";
import OperatePage from "../src/pages/Operate.tsx";
import PolicyPage from "../src/pages/Policy.tsx";
import { signOut } from "../src/session.ts";
import { type Answers, proxyView, renderPage, signInAs } from "./support.tsx";

const proxyId = "00000000-0000-4000-8000-000000000001";
const proxy = proxyView({ id: proxyId });
const answers: Answers = {
  "proxies.get": proxy,
  "policies.get": { proxyId, policy: DEFAULT_POLICY, source: "default" },
  "policies.listPresets": { presets: [] },
  "policies.getEnvironment": {
    error: { httpStatus: 404, message: "environment policy production not found" },
  },
  "scaling.events": { items: [], nextCursor: null },
  "live.onChange": null,
};

afterEach(() => signOut());

describe("role-dependent controls", () => {
  it.each([
    ["viewer", []],
    ["operator", ["Operate"]],
    ["admin", ["Policy", "Operate"]],
  ] as const)("a %s sees the proxy tabs %j besides Overview, Simulate and Audit", (role, extra) => {
    signInAs(role);
    renderPage(<ProxyTabs proxyId={proxyId} />, { path: "/", url: "/", answers });
    const links = screen.getAllByRole("link").map((link) => link.textContent);
    expect(links).toEqual(["Overview", ...extra, "Simulate", "Audit"]);
  });

  it("a viewer on the operate page gets no scale form and no mode switch", async () => {
    signInAs("viewer");
    renderPage(<OperatePage />, {
      path: "/proxies/:proxyId/operate",
      url: `/proxies/${proxyId}/operate`,
      answers,
    });
    await screen.findByText(/Operating a proxy needs role operator or admin; you are signed in as viewer/);
    expect(screen.queryByRole("button", { name: "Scale…" })).toBeNull();
    expect(screen.queryAllByRole("radio")).toEqual([]);
  });

  it("an operator may scale but not switch the mode, which is part of the admin-only policy", async () => {
    signInAs("operator");
    renderPage(<OperatePage />, {
      path: "/proxies/:proxyId/operate",
      url: `/proxies/${proxyId}/operate`,
      answers,
    });
    await screen.findByRole("button", { name: "Scale…" });
    const radios = await screen.findAllByRole("radio");
    expect(radios).toHaveLength(POLICY_MODES.length);
    for (const radio of radios) expect(radio).toHaveProperty("disabled", true);
  });

  it("an admin may switch the mode", async () => {
    signInAs("admin");
    renderPage(<OperatePage />, {
      path: "/proxies/:proxyId/operate",
      url: `/proxies/${proxyId}/operate`,
      answers,
    });
    const radios = await screen.findAllByRole("radio");
    for (const radio of radios) expect(radio).toHaveProperty("disabled", false);
  });

  it("an operator on the policy page gets no form, only the preview", async () => {
    signInAs("operator");
    renderPage(<PolicyPage />, {
      path: "/proxies/:proxyId/policy",
      url: `/proxies/${proxyId}/policy`,
      answers,
    });
    await screen.findByText(/Editing policies needs role admin; you are signed in as operator/);
    expect(screen.queryByRole("form", { name: "Scaling policy" })).toBeNull();
    expect(screen.getByRole("button", { name: "Evaluate now" })).toBeTruthy();
  });

  it("an admin gets the policy form, inheriting the global default when the environment has none", async () => {
    signInAs("admin");
    renderPage(<PolicyPage />, {
      path: "/proxies/:proxyId/policy",
      url: `/proxies/${proxyId}/policy`,
      answers,
    });
    await screen.findByRole("form", { name: "Scaling policy" });
    expect(screen.getByRole("button", { name: "Inherited (global default)" })).toBeTruthy();
  });

  it("shows a 403 from the server plainly", async () => {
    signInAs("operator");
    renderPage(<OperatePage />, {
      path: "/proxies/:proxyId/operate",
      url: `/proxies/${proxyId}/operate`,
      answers: {
        ...answers,
        "proxies.get": { error: { httpStatus: 403, message: "requires role operator" } },
      },
    });
    const alert = await screen.findByRole("alert");
    await waitFor(() =>
      expect(alert.textContent).toBe("You may not see this proxyHTTP 403: requires role operator"),
    );
  });
});
