import { parseActuatorConfig } from "@proxyscale/core";
import { describe, expect, it } from "vitest";
import { ActuatorError, createActuator } from "../../src/actuators/index.ts";

const ctx = { proxyId: "edge", eventId: "evt", fromReplicas: 2 };

describe("createActuator", () => {
  it("builds the kind the parsed config names", async () => {
    const configs = [
      { kind: "none" },
      { kind: "webhook", url: "https://ops.example/scale", secret: "0123456789abcdef" },
      { kind: "command", command: ["/usr/local/bin/scale-fleet", "{replicas}"] },
      {
        kind: "kubernetes",
        name: "edge",
        credentials: {
          source: "inCluster",
          serviceAccountDir: "/nonexistent",
          apiServerUrl: "https://10.0.0.1",
        },
      },
    ];
    const built: string[] = [];
    for (const config of configs) {
      try {
        const actuator = await createActuator(parseActuatorConfig(config), {
          proxyId: "edge",
          initialReplicas: 2,
        });
        built.push(actuator.kind);
        await actuator.close();
      } catch (error) {
        // The kubernetes actuator reads its credentials at construction: a missing token is a clear error.
        expect(error).toBeInstanceOf(ActuatorError);
        expect((error as Error).message).toContain(
          "cannot read the service account token at /nonexistent/token",
        );
        built.push(`${config.kind}: refused`);
      }
    }
    expect(built).toEqual(["none", "webhook", "command", "kubernetes: refused"]);
  });

  it("none records the requested count as observed and rejects impossible counts", async () => {
    const actuator = await createActuator({ kind: "none" }, { proxyId: "edge", initialReplicas: 2 });
    expect(await actuator.getReplicas()).toEqual({ replicas: 2, readyReplicas: 2, unhealthyReplicas: 0 });
    await expect(actuator.setReplicas(4, ctx)).resolves.toEqual({ status: "completed", observedReplicas: 4 });
    expect(await actuator.getReplicas()).toMatchObject({ replicas: 4 });
    await expect(actuator.setReplicas(-1, ctx)).rejects.toMatchObject({
      code: "invalid_request",
      message: "replicas must be a whole number ≥ 0, got -1",
    });
    await expect(actuator.setReplicas(1.5, ctx)).rejects.toBeInstanceOf(ActuatorError);
  });
});
