import { writeFileSync } from "node:fs";
import { Writable } from "node:stream";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { Database } from "@proxyscale/db";
import fc from "fast-check";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.ts";
import {
  type Client,
  client,
  disposeDatabase,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  testDriverList,
  token,
  unique,
} from "./support.ts";

/**
 * The whole REST API fuzzed from its own OpenAPI document: for every operation of /api/openapi.json, requests
 * built from the operation's schemas (valid ones, and ones with a field replaced by a hostile value: control
 * characters and NUL, 2^31, 2^53−1, 1e308, deep nesting, a wrong type, a missing or an unknown field) go over
 * real HTTP to a real server as an admin. The property: never a 5xx, and the server still answers /healthz.
 * After every write that succeeds on a proxy, the proxy is read and evaluated (a stored value must never break a
 * later read or decision). Failures are collected, not stopped at, so one run names every one it met.
 *
 * FUZZ_SEED and FUZZ_RUNS override the seed (fixed by default, so a run is repeatable) and runs per operation.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);

// biome-ignore lint/suspicious/noExplicitAny: JSON Schema nodes of the dereferenced document
type Schema = any;
type Json = unknown;

interface Operation {
  id: string;
  method: string;
  path: string;
  pathParams: { name: string; schema: Schema }[];
  queryParams: { name: string; schema: Schema }[];
  body: Schema | undefined;
}

interface Failure {
  operation: string;
  request: string;
  status: number;
  response: string;
  cause: string | undefined;
}

const CONTROL_CHARACTERS = ["\u0000", "\u0001", "\u0008", "\u001b", "\u001f", "\u007f"];
const HUGE_NUMBERS = [
  2 ** 31,
  2 ** 31 - 1,
  -(2 ** 31) - 1,
  2 ** 32,
  2 ** 52,
  2 ** 53 - 1,
  1e308,
  -1e308,
  1e21,
];

function nested(depth: number): Json {
  let value: Json = 1;
  for (let level = 0; level < depth; level++) value = level % 2 ? [value] : { a: value };
  return value;
}

/** A string with a control character (NUL included) somewhere in it. */
const controlString = fc
  .tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...CONTROL_CHARACTERS), fc.string({ maxLength: 8 }))
  .map(([before, control, after]) => `${before}${control}${after}`);

/** Values no schema field should break the server with. */
const hostile: fc.Arbitrary<Json> = fc.oneof(
  controlString,
  fc.constantFrom(...HUGE_NUMBERS),
  fc.constantFrom(1.5, -1, 0, -0.5, Number.MIN_VALUE),
  fc.constantFrom(null, true, false, "", "1", "null", [], {}, [1, "a"], { a: 1 }),
  fc.constantFrom(20, 200).map(nested),
  fc.constantFrom("x".repeat(5_000), "\u{1F600}".repeat(300), "\ud800", "%ZZ", "../../etc/passwd"),
);

/** Printable text, sometimes with a control character: strings that satisfy a plain `type: string`. */
const text = (minLength = 0, maxLength = 40) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.string({ minLength, maxLength: Math.max(minLength, Math.min(maxLength, 40)) }),
    },
    {
      weight: 1,
      arbitrary: controlString.filter((value) => value.length >= minLength && value.length <= maxLength),
    },
  );

function numberArbitrary(schema: Schema, integer: boolean): fc.Arbitrary<number> {
  const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum : undefined);
  const max = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum : undefined);
  const inRange = (value: number) =>
    (schema.minimum === undefined || value >= schema.minimum) &&
    (schema.maximum === undefined || value <= schema.maximum) &&
    (schema.exclusiveMinimum === undefined || value > schema.exclusiveMinimum) &&
    (schema.exclusiveMaximum === undefined || value < schema.exclusiveMaximum) &&
    (!integer || Number.isInteger(value));
  const edges = [...HUGE_NUMBERS, 0, 1, min, max].filter(
    (value): value is number => typeof value === "number" && inRange(value),
  );
  const low = Math.max(min ?? -1000, -(2 ** 40));
  const high = Math.min(max ?? 1000, 2 ** 40);
  const ordinary = integer
    ? fc.integer({ min: Math.ceil(low), max: Math.max(Math.ceil(low), Math.floor(high)) })
    : fc.double({ min: low, max: Math.max(low, high), noNaN: true, noDefaultInfinity: true });
  const arbitraries = [{ weight: 3, arbitrary: ordinary.filter(inRange) }];
  if (edges.length) arbitraries.push({ weight: 1, arbitrary: fc.constantFrom(...edges) });
  return fc.oneof(...arbitraries);
}

/** Values the schema allows (as the document states it): what a careful client would send. */
function fromSchema(schema: Schema, context: FuzzContext, depth = 0): fc.Arbitrary<Json> {
  if (!schema || typeof schema !== "object" || depth > 8) return fc.constant(null);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives)
    return fc.oneof(...alternatives.map((option: Schema) => fromSchema(option, context, depth + 1)));
  if (schema.allOf) return fromSchema(Object.assign({}, ...schema.allOf), context, depth + 1);
  if (Array.isArray(schema.type)) {
    return fc.oneof(
      ...schema.type.map((type: string) => fromSchema({ ...schema, type }, context, depth + 1)),
    );
  }
  switch (schema.type) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
      return numberArbitrary(schema, true);
    case "number":
      return numberArbitrary(schema, false);
    case "string":
      return stringFromSchema(schema, context);
    case "array":
      return fc.array(fromSchema(schema.items, context, depth + 1), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 3, Math.max(schema.minItems ?? 0, 3)),
      });
    case "object":
      return objectFromSchema(schema, context, depth);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function stringFromSchema(schema: Schema, context: FuzzContext): fc.Arbitrary<string> {
  const minLength = schema.minLength ?? 0;
  const maxLength = schema.maxLength ?? 200;
  if (schema.format === "uuid") return fc.oneof(context.proxyId(), fc.uuid());
  if (schema.format === "date-time")
    return fc
      .date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
      .map((date) => date.toISOString());
  if (schema.format === "uri") return fc.constantFrom(context.receiverUrl, "http://127.0.0.1:9/scale");
  if (schema.pattern) {
    return fc
      .stringMatching(new RegExp(schema.pattern))
      .filter((value) => value.length >= minLength && value.length <= maxLength);
  }
  return text(minLength, maxLength);
}

function objectFromSchema(schema: Schema, context: FuzzContext, depth: number): fc.Arbitrary<Json> {
  const properties: Record<string, Schema> = schema.properties ?? {};
  const required = new Set<string>(schema.required ?? []);
  const known = fc.record(
    Object.fromEntries(
      Object.entries(properties).map(([key, value]) => [key, fromSchema(value, context, depth + 1)]),
    ),
    { requiredKeys: [...required].filter((key) => key in properties) },
  );
  const extra = schema.additionalProperties;
  if (!extra || typeof extra !== "object") return known;
  const keys = schema.propertyNames?.pattern
    ? fc.stringMatching(new RegExp(schema.propertyNames.pattern))
    : fc.string({ minLength: 1, maxLength: 12 });
  return fc
    .tuple(known, fc.dictionary(keys, fromSchema(extra, context, depth + 1), { maxKeys: 3 }))
    .map(([fixed, more]) => ({ ...more, ...(fixed as object) }));
}

/** Every place in `value` a mutation can land: the value itself and each nested field or item. */
function slots(value: Json, path: (string | number)[] = []): (string | number)[][] {
  const found = [path];
  if (value && typeof value === "object" && path.length < 6) {
    for (const [key, child] of Object.entries(value)) {
      found.push(...slots(child, [...path, Array.isArray(value) ? Number(key) : key]));
    }
  }
  return found;
}

type Mutation = "replace" | "delete" | "unknown";

/** `value` with one slot replaced by `replacement`, deleted, or given an unknown field. */
function mutate(value: Json, pick: number, mutation: Mutation, replacement: Json): Json {
  const places = slots(value);
  const path = places[pick % places.length]!;
  if (path.length === 0) return mutation === "replace" ? replacement : value;
  const copy = structuredClone(value) as Record<string | number, Json>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path.at(-1)!;
  if (mutation === "delete" && !Array.isArray(parent)) delete parent[last];
  else if (
    mutation === "unknown" &&
    !Array.isArray(parent) &&
    typeof parent[last] === "object" &&
    parent[last]
  )
    (parent[last] as Record<string, Json>).unknownField = replacement;
  else parent[last] = replacement;
  return copy;
}

/** Valid values, and valid values with one hostile change. */
function withMutations(valid: fc.Arbitrary<Json>): fc.Arbitrary<Json> {
  return fc.oneof(
    { weight: 2, arbitrary: valid },
    {
      weight: 3,
      arbitrary: fc
        .tuple(valid, fc.nat(), fc.constantFrom<Mutation>("replace", "replace", "delete", "unknown"), hostile)
        .map(([value, pick, mutation, replacement]) => mutate(value, pick, mutation, replacement)),
    },
  );
}

/**
 * The coverage phase (run before the random one, as fast-check examples): a simple valid value of the schema,
 * then the same value with one field at a time changed to each hostile class (huge numbers, control strings,
 * a wrong type, deep nesting), removed, or joined by an unknown field. Random combinations rarely reach a field
 * deep in a large body with every other field still valid; this reaches every field of every operation.
 */
function simplest(schema: Schema, context: FuzzContext, depth = 0): Json {
  if (!schema || typeof schema !== "object" || depth > 8) return null;
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return simplest(alternatives[0], context, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== "null") : schema.type;
  switch (type) {
    case "boolean":
      return true;
    case "integer":
    case "number": {
      const low = schema.minimum ?? (schema.exclusiveMinimum ?? 0) + (type === "integer" ? 1 : 0.5);
      return Math.min(
        Math.max(low, 1),
        schema.maximum ?? Infinity,
        (schema.exclusiveMaximum ?? Infinity) - 0.5,
      );
    }
    case "string":
      return fc.sample(stringFromSchema(schema, context), { seed: SEED, numRuns: 1 })[0];
    case "array":
      return Array.from({ length: Math.max(schema.minItems ?? 0, 1) }, () =>
        simplest(schema.items, context, depth + 1),
      );
    case "object":
      return Object.fromEntries(
        (schema.required ?? []).map((key: string) => [
          key,
          simplest(schema.properties?.[key], context, depth + 1),
        ]),
      );
    default:
      return null;
  }
}

const COVERAGE_VALUES: Json[] = [
  ...HUGE_NUMBERS,
  -1,
  1.5,
  "a\u0000b",
  "\u0001",
  "tab\u0009",
  "\u007f",
  "x".repeat(5_000),
  null,
  true,
  "1",
  [],
  {},
  nested(50),
  // Past where an unbounded recursive parser or validator overflows its stack (3,000 was the probe's depth).
  nested(3_000),
];

/** The values `coverage` gives one field: the hostile classes, and each alternative's own fields. */
function coverage(schema: Schema, context: FuzzContext, depth = 0): Json[] {
  if (!schema || typeof schema !== "object" || depth > 6) return [];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) {
    return [
      ...COVERAGE_VALUES,
      ...alternatives.flatMap((option: Schema) => coverage(option, context, depth + 1).filter(isObject)),
    ];
  }
  const base = simplest(schema, context, depth);
  if (schema.type === "array" && schema.items) {
    return [...COVERAGE_VALUES, ...coverage(schema.items, context, depth + 1).map((item) => [item])];
  }
  if (schema.type !== "object" || !isObject(base)) return COVERAGE_VALUES;
  const values: Json[] = [...COVERAGE_VALUES, base, { ...base, unknownField: 1 }];
  for (const key of schema.required ?? []) {
    const { [key]: _removed, ...rest } = base;
    values.push(rest);
  }
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    for (const value of coverage(property, context, depth + 1)) values.push({ ...base, [key]: value });
  }
  return values;
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The coverage phase's requests for one operation: its body's fields, then each parameter's, one at a time. */
function coverageRequests(operation: Operation, context: FuzzContext, proxyId: string): FuzzRequest[] {
  const simpleParams = operation.pathParams.map(({ name, schema }) =>
    name === "proxyId" ? proxyId : encode(paramText(simplest(schema, context))),
  );
  const build = (params: string[], query: string, body: Json): FuzzRequest => {
    let index = 0;
    return {
      path: `/api${operation.path.replace(/\{[^}]+\}/g, () => params[index++] as string)}`,
      query,
      body,
      hasBody: operation.body !== undefined,
    };
  };
  const body = operation.body ? simplest(operation.body, context) : undefined;
  const requests = operation.body
    ? coverage(operation.body, context).map((value) => build(simpleParams, "", value))
    : [build(simpleParams, "", undefined)];
  operation.pathParams.forEach((_param, position) => {
    for (const value of [...COVERAGE_VALUES, "%ZZ", "%00"]) {
      const params = [...simpleParams];
      params[position] = value === "%ZZ" || value === "%00" ? value : encode(paramText(value));
      requests.push(build(params, "", body));
    }
  });
  for (const { name } of operation.queryParams) {
    for (const value of COVERAGE_VALUES) {
      requests.push(build(simpleParams, `?${encode(name)}=${encode(paramText(value))}`, body));
    }
  }
  return requests;
}

interface FuzzContext {
  receiverUrl: string;
  proxyId(): fc.Arbitrary<string>;
}

interface FuzzRequest {
  path: string;
  query: string;
  body: Json;
  hasBody: boolean;
}

function paramText(value: Json): string {
  return typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
}

/** Percent-encoded; a lone surrogate (which URLs cannot carry) becomes U+FFFD first. */
function encode(value: string): string {
  return encodeURIComponent(value.replace(/\p{Cs}/gu, "\ufffd"));
}

function requestArbitrary(operation: Operation, context: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const pathParams = fc.tuple(
    ...operation.pathParams.map(({ schema }) =>
      fc.oneof(
        { weight: 6, arbitrary: fromSchema(schema, context).map(paramText).map(encode) },
        { weight: 2, arbitrary: hostile.map(paramText).map(encode) },
        // Raw, not percent-encoded: what a careless client puts in a URL.
        { weight: 1, arbitrary: fc.constantFrom("%ZZ", "%", "%00", "%E0%A4%A") },
      ),
    ),
  );
  const query = fc.tuple(
    ...operation.queryParams.map(({ name, schema }) =>
      fc.option(
        withMutations(fromSchema(schema, context)).map(
          (value) => `${encode(name)}=${encode(paramText(value))}`,
        ),
        { nil: undefined },
      ),
    ),
  );
  const body = operation.body ? withMutations(fromSchema(operation.body, context)) : fc.constant(undefined);
  return fc.tuple(pathParams, query, body).map(([params, queries, value]) => {
    let index = 0;
    const path = operation.path.replace(/\{[^}]+\}/g, () => params[index++] as string);
    const parts = queries.filter((part): part is string => part !== undefined);
    return {
      path: `/api${path}`,
      query: parts.length ? `?${parts.join("&")}` : "",
      body: value,
      hasBody: operation.body !== undefined,
    };
  });
}

function operationsOf(document: Schema): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, Schema>>)) {
    for (const [method, operation] of Object.entries(item)) {
      const parameters: Schema[] = operation.parameters ?? [];
      operations.push({
        id: operation.operationId,
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((p) => p.in === "path"),
        queryParams: parameters.filter((p) => p.in === "query"),
        body: operation.requestBody?.content?.["application/json"]?.schema,
      });
    }
  }
  // Deletes last, so the proxies the other operations write to are still there while they run.
  return operations.sort((a, b) => Number(a.method === "DELETE") - Number(b.method === "DELETE"));
}

function summary(value: Json): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 300 ? `${json.slice(0, 300)}… (${json.length} chars)` : json;
}

interface LoggedError {
  message?: string;
  code?: string;
  cause?: LoggedError;
}

/** The deepest cause's message and code: the driver's error under drizzle's "Failed query: …". */
function innermost(error: LoggedError | undefined): string {
  let current = error;
  while (current?.cause?.message) current = current.cause;
  return current ? `${current.code ? `[${current.code}] ` : ""}${current.message ?? ""}` : "";
}

/** Server log lines at error level, so a 500's cause (opaque to the client) is named in the failure. */
function errorLog() {
  const causes: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split("\n").filter(Boolean)) {
        try {
          const entry = JSON.parse(line) as { level: number; msg?: string; err?: LoggedError };
          if (entry.level >= 50) causes.push(`${entry.msg}: ${innermost(entry.err)}`.slice(-400));
        } catch {
          causes.push(line.slice(0, 300));
        }
      }
      callback();
    },
  });
  return { stream, causes };
}

/** One failure per operation and cause (the first met), with how many requests met it. */
function distinct(failures: Failure[]): (Failure & { times: number })[] {
  const seen = new Map<string, Failure & { times: number }>();
  for (const failure of failures) {
    // The driver's message ends the cause (after drizzle's query and params); numbers differ run to run.
    const reason = failure.cause
      ?.split(": ")
      .at(-1)
      ?.replace(/[\d.e+-]+/g, "N");
    const key = `${failure.operation} ${failure.status} ${reason}`;
    const first = seen.get(key);
    if (first) first.times += 1;
    else seen.set(key, { ...failure, times: 1 });
  }
  return [...seen.values()];
}

for (const driver of testDriverList()) {
  describe.skipIf(!driver.available)(`REST fuzz from /api/openapi.json [${driver.name}]`, () => {
    let database: Database;
    let server: TestServer;
    let admin: Client;
    let operations: Operation[];
    const log = errorLog();
    const failures: Failure[] = [];
    const proxyIds: string[] = [];
    let receiver: import("node:http").Server;
    let receiverUrl = "http://127.0.0.1:9/scale";

    beforeAll(async () => {
      database = await driver.open({ poolMax: 8 });
      server = await startTestServer(database, { logger: createLogger("error", log.stream) });
      admin = client(server.url, await token({ role: "admin", sub: unique("fuzz-admin") }));
      const { createServer } = await import("node:http");
      receiver = createServer((req, res) => {
        req.resume();
        req.on("end", () => res.writeHead(202).end());
      });
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
      const address = receiver.address() as import("node:net").AddressInfo;
      receiverUrl = `http://127.0.0.1:${address.port}/scale`;
      const document = await (await fetch(`${server.url}/api/openapi.json`)).json();
      operations = operationsOf(await SwaggerParser.dereference(document as never));
      for (let i = 0; i < 4; i++) {
        const response = await admin.request("POST", "/api/proxies", { body: { name: unique("fuzz") } });
        proxyIds.push(response.body.id);
      }
    });

    afterAll(async () => {
      receiver?.close();
      await server?.close();
      if (database) await disposeDatabase(database);
    });

    async function send(operation: string, method: string, path: string, body: Json, hasBody: boolean) {
      const causesBefore = log.causes.length;
      const response = await admin.request(
        method,
        path,
        hasBody ? { rawBody: body === undefined ? "" : (JSON.stringify(body) ?? "") } : {},
      );
      if (response.status >= 500) {
        failures.push({
          operation,
          request: `${method} ${path} ${hasBody ? summary(body) : ""}`.trim(),
          status: response.status,
          response: summary(response.body),
          cause: log.causes.slice(causesBefore).join(" | ") || undefined,
        });
      }
      return response;
    }

    /** After a write succeeds on a proxy: what was stored must still read and evaluate without a 5xx. */
    async function followUp(operation: string, proxyId: string) {
      await send(`${operation} → proxies-get`, "GET", `/api/proxies/${proxyId}`, undefined, false);
      await send(
        `${operation} → policies-get`,
        "GET",
        `/api/proxy/scaling/policies/${proxyId}`,
        undefined,
        false,
      );
      await send(
        `${operation} → scaling-evaluate`,
        "POST",
        `/api/proxy/scaling/evaluate/${proxyId}`,
        {},
        true,
      );
    }

    const WRITES_TO_FOLLOW = new Set([
      "proxies-register",
      "proxies-update",
      "policies-upsert",
      "metrics-record",
      "metrics-recordBatch",
      "health-set",
      "scaling-execute",
    ]);

    it("answers every operation's valid and hostile inputs without a 5xx, and stays alive", {
      timeout: 600_000,
    }, async () => {
      const context: FuzzContext = {
        receiverUrl,
        proxyId: () => fc.constantFrom(...proxyIds),
      };
      for (const operation of operations) {
        const examples = coverageRequests(operation, context, proxyIds[0]!).map(
          (request) => [request] as [FuzzRequest],
        );
        await fc.assert(
          fc.asyncProperty(requestArbitrary(operation, context), async (request) => {
            const response = await send(
              operation.id,
              operation.method,
              `${request.path}${request.query}`,
              request.body,
              request.hasBody,
            );
            if (response.status < 300 && WRITES_TO_FOLLOW.has(operation.id)) {
              const proxyId =
                operation.id === "proxies-register"
                  ? (response.body?.id as string | undefined)
                  : /\/(?:proxies|policies|metrics|execute)\/([0-9a-f-]{36})/.exec(request.path)?.[1];
              if (proxyId) await followUp(operation.id, proxyId);
            }
            return true;
          }),
          // numRuns counts the examples too.
          { seed: SEED, numRuns: examples.length + RUNS, examples },
        );
        const health = await fetch(`${server.url}/healthz`);
        expect(health.status, `/healthz after ${operation.id}`).toBe(200);
      }
      if (process.env.FUZZ_REPORT) {
        writeFileSync(
          `${process.env.FUZZ_REPORT}.${driver.name}.json`,
          JSON.stringify({ seed: SEED, runs: RUNS, failures: distinct(failures) }, null, 2),
        );
      }
      expect(distinct(failures), `seed ${SEED}, ${RUNS} runs per operation`).toEqual([]);
    });

    it("answers a token whose sub has control characters without a 5xx", { timeout: 120_000 }, async () => {
      await fc.assert(
        fc.asyncProperty(
          controlString.filter((sub) => sub.length > 0),
          async (sub) => {
            // Signed with jose itself: signToken checks the claims, and a token from elsewhere need not.
            const signed = await new SignJWT({ role: "admin", tier: "enterprise" })
              .setProtectedHeader({ alg: "HS256" })
              .setSubject(sub)
              .setExpirationTime("1h")
              .sign(new TextEncoder().encode(TEST_SECRET));
            const caller = client(server.url, signed);
            const response = await caller.request("POST", "/api/proxies", {
              body: { name: unique("fuzz-sub") },
            });
            if (response.status >= 500)
              failures.push({
                operation: "token sub",
                request: `POST /api/proxies as sub ${JSON.stringify(sub)}`,
                status: response.status,
                response: summary(response.body),
                cause: undefined,
              });
            return response.status < 500;
          },
        ),
        { seed: SEED, numRuns: Math.max(10, Math.floor(RUNS / 2)) },
      );
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    });
  });
}
