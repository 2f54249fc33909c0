import { expect, it } from "vitest";
import { client, forEachDriver, token, unique } from "../support.ts";

forEachDriver("registering a local proxy with a replica template", (context) => {
  it("answers 400 naming the template's field and rule, and stores nothing", async () => {
    const admin = client(context().url, await token({ role: "admin", sub: unique("owner") }));
    const name = unique("templated");
    const response = await admin.request("POST", "/api/proxies", {
      body: {
        name,
        actuator: {
          kind: "local",
          upstreamUrl: "http://127.0.0.1:9000",
          replica: { template: "custom", command: ["/usr/local/bin/proxy", "--listen", "{prot}"] },
        },
      },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    const issues = (response.body.zodIssues as Array<{ field: string; message: string }>).map(
      ({ field, message }) => ({ field, message }),
    );
    expect(issues).toContainEqual({
      field: "actuator.replica.command.2",
      message: expect.stringContaining("has an unknown placeholder {prot}"),
    });
    expect(issues).toContainEqual({
      field: "actuator.replica.command",
      message: "must pass {port} in an argument or in configTemplate: the front forwards to it",
    });
    const listed = await admin.request("GET", "/api/proxies");
    expect(JSON.stringify(listed.body)).not.toContain(name);
  });

  it("stores a haproxy template with its defaults filled", async () => {
    const admin = client(context().url, await token({ role: "admin", sub: unique("owner") }));
    const response = await admin.request("POST", "/api/proxies", {
      body: {
        name: unique("haproxy"),
        actuator: { kind: "local", upstreamUrl: "http://127.0.0.1:9000", replica: { template: "haproxy" } },
      },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body.actuator).toMatchObject({
      kind: "local",
      replica: { template: "haproxy", command: "haproxy", stopTimeoutMs: 10_000 },
    });
  });
});
