import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import SignInPage from "../src/pages/SignIn.tsx";
import { getEndReason, getSession, parseToken, restoreSession, signOut } from "../src/session.ts";
import { fakeToken, renderPage } from "./support.tsx";

afterEach(() => signOut());

function at(url: string) {
  window.history.replaceState(null, "", url);
}

describe("the session", () => {
  it("takes the token from the #token= fragment, stores it, and removes it from the address bar", () => {
    const token = fakeToken({ sub: "alice", role: "admin", tier: "pro" });
    at(`/proxies/x?range=1h#token=${token}`);
    restoreSession();
    expect(getSession()?.claims).toEqual({ sub: "alice", role: "admin", tier: "pro" });
    expect(localStorage.getItem("proxyscale.token")).toBe(token);
    expect(window.location.hash).toBe("");
    expect(`${window.location.pathname}${window.location.search}`).toBe("/proxies/x?range=1h");
  });

  it("restores the stored token on the next load", () => {
    localStorage.setItem("proxyscale.token", fakeToken({ sub: "bob", role: "viewer", tier: "free" }));
    at("/");
    restoreSession();
    expect(getSession()?.claims.sub).toBe("bob");
  });

  it("refuses an expired link with the reason, and keeps nothing", () => {
    at(`/#token=${fakeToken({ sub: "carol", role: "admin", tier: "pro" }, -60)}`);
    restoreSession();
    expect(getSession()).toBeNull();
    expect(getEndReason()).toMatch(/^the sign-in link's token was refused: the token expired at /);
    expect(localStorage.getItem("proxyscale.token")).toBeNull();
    expect(window.location.hash).toBe("");
  });

  it("names the claim a foreign token lacks", () => {
    expect(() => parseToken(fakeToken({ sub: "dave", role: "root", tier: "pro" }))).toThrow(
      /the token's role/,
    );
    expect(() => parseToken("not-a-jwt")).toThrow(/not a JWT/);
  });

  it("the sign-in page shows why the last session ended", async () => {
    signOut("the server rejected your token: invalid signature");
    renderPage(<SignInPage />, { path: "/sign-in", url: "/sign-in", answers: {} });
    expect((await screen.findByTestId("sign-in-reason")).textContent).toBe(
      "Signed out: the server rejected your token: invalid signature.",
    );
  });
});
