import http from "node:http";
import type { AddressInfo } from "node:net";
import { signToken } from "@proxyscale/api";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  client,
  forEachDriver,
  registerProxy,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  token,
  unique,
} from "./support.ts";

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A JWKS endpoint on loopback, as an identity provider serves it. */
async function startJwksServer(
  keys: object[],
): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const server = http.createServer((_req, res) => {
    requests += 1;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

forEachDriver("authentication", (suite) => {
  const callWith = (bearer: string | null, header?: string) =>
    client(suite().url).request("GET", "/api/proxies", {
      token: bearer,
      ...(header ? { headers: { authorization: header } } : {}),
    });

  describe("HS256 tokens (PROXYSCALE_JWT_SECRET)", () => {
    it("accepts a valid token", async () => {
      const response = await callWith(await token({ role: "viewer" }));
      expect(response.status).toBe(200);
    });

    it("rejects a missing token and a non-Bearer scheme", async () => {
      const missing = await callWith(null);
      expect(missing.status).toBe(401);
      expect(missing.body.message).toBe("missing Authorization: Bearer <token>");
      const basic = await callWith(null, "Basic dXNlcjpwYXNz");
      expect(basic.status).toBe(401);
      expect(basic.body.message).toBe("Authorization header must be Bearer <token>");
    });

    it("rejects an expired token", async () => {
      const expired = await signToken({
        sub: "late",
        role: "admin",
        tier: "pro",
        secret: TEST_SECRET,
        now: Date.now() - 2 * 3600_000,
        expiresIn: "1h",
      });
      const response = await callWith(expired);
      expect(response.status).toBe(401);
      expect(response.body.message).toBe("token has expired");
    });

    it("rejects a token that is not valid yet (nbf)", async () => {
      const early = await signToken({
        sub: "early",
        role: "admin",
        tier: "pro",
        secret: TEST_SECRET,
        notBefore: Date.now() + 3600_000,
      });
      const response = await callWith(early);
      expect(response.status).toBe(401);
      expect(response.body.message).toBe("token is not valid yet (nbf)");
    });

    it("rejects a tampered token (payload changed after signing)", async () => {
      const [header, , signature] = (await token({ role: "viewer", sub: "mallory" })).split(".");
      const forged = `${header}.${base64url({ sub: "mallory", role: "admin", tier: "enterprise", exp: Math.floor(Date.now() / 1000) + 600 })}.${signature}`;
      const response = await callWith(forged);
      expect(response.status).toBe(401);
      expect(response.body.message).toBe("token signature is invalid");
    });

    it("rejects alg: none", async () => {
      const unsigned = `${base64url({ alg: "none", typ: "JWT" })}.${base64url({
        sub: "mallory",
        role: "admin",
        tier: "enterprise",
        exp: Math.floor(Date.now() / 1000) + 600,
      })}.`;
      const response = await callWith(unsigned);
      expect(response.status).toBe(401);
      expect(response.body.message).toBe('token algorithm "none" is not accepted');
    });

    it("rejects a token signed with another secret, one without exp, and one with an unknown role", async () => {
      const otherSecret = await token({ secret: "another-secret-that-is-long-enough-0123456789" });
      expect((await callWith(otherSecret)).body.message).toBe("token signature is invalid");

      const key = new TextEncoder().encode(TEST_SECRET);
      const immortal = await new SignJWT({ role: "admin", tier: "pro" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("forever")
        .sign(key);
      const noExp = await callWith(immortal);
      expect(noExp.status).toBe(401);
      expect(noExp.body.message).toBe("token claim exp is invalid");

      const superuser = await new SignJWT({ role: "superuser", tier: "pro" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("root")
        .setExpirationTime("1h")
        .sign(key);
      const badRole = await callWith(superuser);
      expect(badRole.status).toBe(401);
      expect(badRole.body.message).toContain("token claims are invalid (role:");
    });

    it("rejects garbage that is not a JWT", async () => {
      const response = await callWith("not-a-jwt");
      expect(response.status).toBe(401);
      expect(response.body.message).toBe("token is not a JWT");
    });
  });

  describe("RS256 and ES256 tokens (PROXYSCALE_JWKS_URL)", () => {
    let jwks: Awaited<ReturnType<typeof startJwksServer>>;
    let server: TestServer;
    let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
    let ec: Awaited<ReturnType<typeof generateKeyPair>>;

    beforeAll(async () => {
      rsa = await generateKeyPair("RS256");
      ec = await generateKeyPair("ES256");
      jwks = await startJwksServer([
        { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
      ]);
      server = await startTestServer(suite().database, { auth: { jwksUrl: jwks.url } });
    });
    afterAll(async () => {
      await server?.close();
      await jwks?.close();
    });

    const providerToken = (
      alg: "RS256" | "ES256",
      kid: string,
      key: Parameters<SignJWT["sign"]>[0],
      claims: Record<string, unknown>,
    ) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg, kid })
        .setSubject(String(claims.sub ?? unique("idp-user")))
        .setIssuedAt()
        .setExpirationTime("10m")
        .sign(key);

    it("accepts tokens signed by the provider's RSA and EC keys", async () => {
      const sub = unique("idp-user");
      const rs = await providerToken("RS256", "rsa-1", rsa.privateKey, {
        sub,
        role: "operator",
        tier: "pro",
      });
      const es = await providerToken("ES256", "ec-1", ec.privateKey, { sub, role: "operator", tier: "pro" });
      const proxyId = await registerProxy(client(server.url, rs));
      const read = await client(server.url, es).request("GET", `/api/proxies/${proxyId}`);
      expect(read.status).toBe(200);
      expect(read.body.ownerId).toBe(sub);
      expect(jwks.requests()).toBeGreaterThan(0);
    });

    it("rejects a token signed by a key the provider does not publish", async () => {
      const stranger = await generateKeyPair("RS256");
      const forged = await providerToken("RS256", "rsa-1", stranger.privateKey, {
        role: "admin",
        tier: "enterprise",
      });
      const response = await client(server.url, forged).request("GET", "/api/proxies");
      expect(response.status).toBe(401);
      expect(response.body.message).toBe("token signature is invalid");
    });

    it("rejects HS256 tokens when only a JWKS is configured (no algorithm confusion)", async () => {
      const hs = await token({ role: "admin" });
      const response = await client(server.url, hs).request("GET", "/api/proxies");
      expect(response.status).toBe(401);
      expect(response.body.message).toBe('token algorithm "HS256" is not accepted');
    });
  });
});
