import { describe, expect, it } from "vitest";
import { z } from "zod";
import { documentedOutput, evaluationSchema } from "../src/outputs.ts";

describe("documentedOutput", () => {
  it("documents the schema it is given and hands every value through unparsed", async () => {
    const documented = documentedOutput(evaluationSchema);
    expect(z.toJSONSchema(documented, { io: "output" })).toEqual(
      z.toJSONSchema(evaluationSchema, { io: "output" }),
    );
    const value = { not: "a decision" };
    await expect(documented.parseAsync(value)).resolves.toBe(value);
    await expect(evaluationSchema.parseAsync(value)).rejects.toThrow();
  });
});
