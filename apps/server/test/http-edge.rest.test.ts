import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { type Client, client, forEachDriver, token, unique } from "./support.ts";

/** A JSON object nested `depth` levels deep: {"a":{"a":…{}…}}. */
const nested = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${"}".repeat(depth - 1)}`;

forEachDriver("the HTTP edge refuses malformed requests with a 4xx", (suite) => {
  let operator: Client;
  beforeAll(async () => {
    operator = client(suite().url, await token({ role: "operator", sub: unique("operator") }));
  });

  describe("path parameters", () => {
    it("answers 400 to a path parameter that is not valid percent-encoding", async () => {
      for (const path of ["/api/proxies/%ZZ", "/api/proxies/%E0%A4%A", "/api/proxy/scaling/evaluate/%"]) {
        const response = await operator.request(path.includes("evaluate") ? "POST" : "GET", path);
        expect(response.status, path).toBe(400);
        expect(response.body.code).toBe("BAD_REQUEST");
        expect(response.body.message).toMatch(/percent-encoding/);
      }
    });
  });

  describe("JSON depth", () => {
    it("answers 400 naming the limit to a body nested deeper than 64 levels, REST and tRPC alike", async () => {
      for (const depth of [65, 5_000, 200_000]) {
        const rest = await operator.request("POST", "/api/proxies", { rawBody: nested(depth) });
        expect(rest.status, `REST depth ${depth}`).toBe(400);
        expect(rest.body.message).toMatch(/nested deeper than 64/);
        expect(rest.body.zodIssues).toEqual([
          expect.objectContaining({ message: expect.stringMatching(/64/) }),
        ]);
        const topLevel = await operator.request("POST", "/api/proxies", {
          rawBody: `${"[".repeat(depth)}${"]".repeat(depth)}`,
        });
        expect(topLevel.status, `REST top-level array depth ${depth}`).toBe(400);
        const trpc = await operator.request("POST", "/trpc/proxies.register", { rawBody: nested(depth) });
        expect(trpc.status, `tRPC depth ${depth}`).toBe(400);
        expect(trpc.body.error.message).toMatch(/nested deeper than 64/);
        expect(trpc.body.error.data.zodIssues).toHaveLength(1);
      }
      const query = await operator.request(
        "GET",
        `/trpc/proxies.list?input=${encodeURIComponent(`{"limit":${"[".repeat(70)}${"]".repeat(70)}}`)}`,
      );
      expect(query.status).toBe(400);
      expect(query.body.error.message).toMatch(/input is nested deeper than 64/);
    });

    it("still accepts bodies within the limit, and deep brackets inside strings", async () => {
      const name = unique("deep");
      const response = await operator.request("POST", "/api/proxies", {
        rawBody: JSON.stringify({ name, region: "[".repeat(100), tags: undefined }),
      });
      expect(response.status).toBe(201);
      // 64 levels is within the limit: the schema (not the depth guard) rejects the unknown shape.
      const within = await operator.request("POST", "/api/proxies", {
        rawBody: `{"name":"${unique("x")}","extra":${nested(63)}}`,
      });
      expect(within.status).not.toBe(500);
      expect(within.body.message ?? "").not.toMatch(/nested deeper/);
    });
  });

  describe("media type, charset and encoding", () => {
    const post = (body: string | Buffer, headers: Record<string, string>) =>
      fetch(`${suite().url}/api/proxies`, {
        method: "POST",
        headers: { authorization: operatorAuth, ...headers },
        body,
      }) // biome-ignore lint/suspicious/noExplicitAny: bodies are asserted field by field
        .then(async (response) => ({ status: response.status, body: (await response.json()) as any }));
    let operatorAuth: string;
    beforeAll(async () => {
      operatorAuth = `Bearer ${await token({ role: "operator", sub: unique("media") })}`;
    });

    it("accepts application/json with a UTF-8 charset or none", async () => {
      for (const type of [
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON; charset="UTF-8"',
      ]) {
        const response = await post(JSON.stringify({ name: unique("json") }), { "content-type": type });
        expect(response.status, type).toBe(201);
      }
    });

    it("answers 415 to another charset or media type, and creates nothing", async () => {
      const name = unique("refused");
      for (const type of [
        "application/json; charset=utf-16",
        "application/json; charset=iso-8859-1",
        "application/json-patch+json",
        "application/jsonx",
        "text/plain",
        "application/json;;;",
      ]) {
        const response = await post(JSON.stringify({ name }), { "content-type": type });
        expect(response.status, type).toBe(415);
        expect(response.body.code).toBe("UNSUPPORTED_MEDIA_TYPE");
        expect(response.body.message).toMatch(/content-type/);
      }
      const listed = await operator.request("GET", "/api/proxies?limit=500");
      expect(listed.body.items.map((proxy: { name: string }) => proxy.name)).not.toContain(name);
    });

    it("decodes a gzip body (Content-Encoding: gzip)", async () => {
      const name = unique("gzip");
      const response = await post(gzipSync(JSON.stringify({ name })), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      expect(response.status).toBe(201);
      expect(response.body.name).toBe(name);
    });

    it("answers 413 to a gzip body that inflates past the body limit (a zip bomb), 400 to one that is not gzip", async () => {
      // 8 MiB of spaces compress to about 8 KiB; the server's limit is 4 MiB.
      const bomb = gzipSync(`{"name":"bomb"${" ".repeat(8 * 1024 * 1024)}}`);
      expect(bomb.length).toBeLessThan(64 * 1024);
      const inflated = await post(bomb, { "content-type": "application/json", "content-encoding": "gzip" });
      expect(inflated.status).toBe(413);
      expect(inflated.body.message).toMatch(/once decompressed/);

      const plain = await post(JSON.stringify({ name: unique("plain") }), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      expect(plain.status).toBe(400);
      expect(plain.body.message).toMatch(/not valid gzip/);
      const truncated = await post(gzipSync(JSON.stringify({ name: unique("cut") })).subarray(0, 12), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      expect(truncated.status).toBe(400);
    });

    it("answers 415 to any other content-encoding, 400 to bytes that are not UTF-8", async () => {
      for (const encoding of ["br", "deflate", "gzip, gzip", "compress"]) {
        const response = await post(JSON.stringify({ name: unique("enc") }), {
          "content-type": "application/json",
          "content-encoding": encoding,
        });
        expect(response.status, encoding).toBe(415);
        expect(response.body.message).toMatch(/content-encoding/);
      }
      const latin1 = Buffer.from(`{"name":"caf\xe9"}`, "latin1");
      const response = await post(latin1, { "content-type": "application/json" });
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/UTF-8/);
    });

    it("holds tRPC calls to the same rules", async () => {
      const call = (body: string | Buffer, headers: Record<string, string>) =>
        fetch(`${suite().url}/trpc/proxies.register`, {
          method: "POST",
          headers: { authorization: operatorAuth, ...headers },
          body,
        });
      const name = unique("trpc-gzip");
      const ok = await call(gzipSync(JSON.stringify({ name })), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      expect(ok.status).toBe(200);
      expect(
        (
          await call(JSON.stringify({ name: unique("t") }), {
            "content-type": "application/json; charset=utf-16",
          })
        ).status,
      ).toBe(415);
      expect(
        (
          await call(JSON.stringify({ name: unique("t") }), {
            "content-type": "application/json",
            "content-encoding": "br",
          })
        ).status,
      ).toBe(415);
    });
  });
});
