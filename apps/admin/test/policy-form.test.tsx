import { DEFAULT_POLICY, policyFromPreset } from "@proxyscale/core";
import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { diffPolicies, FIELDS, fieldOf, validateDraft } from "../src/pages/policy/form.ts";
import { PolicyForm } from "../src/pages/policy/PolicyForm.tsx";

function renderForm(onSave = vi.fn()) {
  render(
    <PolicyForm
      saved={DEFAULT_POLICY}
      inherited={{ policy: DEFAULT_POLICY, from: "global default" }}
      presets={[{ name: "aggressive", policy: policyFromPreset("aggressive") }]}
      saving={false}
      onSave={onSave}
    />,
  );
  return onSave;
}

const save = () => screen.getByRole("button", { name: /Save policy/ });

describe("the policy form", () => {
  it("has an input for every leaf of a full policy", () => {
    renderForm();
    for (const field of FIELDS)
      expect(document.getElementById(`field-${field.path.replaceAll(".", "-")}`)).not.toBeNull();
    // Every field core's schema fills in is covered by some form field (a list or map by its rows).
    const leaves = (value: unknown, prefix: string): string[] =>
      value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0
        ? Object.entries(value).flatMap(([key, inner]) => leaves(inner, prefix ? `${prefix}.${key}` : key))
        : [prefix];
    for (const leaf of leaves(DEFAULT_POLICY, "")) expect(fieldOf(leaf.split(".")), leaf).not.toBe("");
  });

  it("shows core's error under the field as the user types, and disables saving", () => {
    renderForm();
    const min = screen.getByLabelText("Minimum replicas");
    fireEvent.change(min, { target: { value: "-1" } });
    expect(min.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById("field-minReplicas-error")?.textContent).toBe("must be ≥ 0");
    expect(save()).toHaveProperty("disabled", true);
    fireEvent.change(min, { target: { value: "2" } });
    expect(document.getElementById("field-minReplicas-error")).toBeNull();
    expect(save()).toHaveProperty("disabled", false);
  });

  it("puts a cross-field rule on the field it names", () => {
    renderForm();
    fireEvent.change(screen.getByLabelText("Scale-down threshold (load score)"), { target: { value: "90" } });
    expect(document.getElementById("field-scaleDownThreshold-error")?.textContent).toBe(
      "must be below scaleUpThreshold (80)",
    );
  });

  it("edits a list as rows: a schema error marks its cell, and removing a row saves the shorter list", () => {
    const onSave = renderForm();
    const value = screen.getByLabelText("rate policy 1: Value", {
      selector: '[name="behavior.scaleUp.policies.0.value"]',
    });
    fireEvent.change(value, { target: { value: "0" } });
    expect(value.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById("field-behavior-scaleUp-policies-error")?.textContent).toBe(
      "0.value: must be greater than 0",
    );
    expect(save()).toHaveProperty("disabled", true);
    fireEvent.change(value, { target: { value: "6" } });
    expect(value.getAttribute("aria-invalid")).toBe("false");
    const scaleUp = document.getElementById("field-behavior-scaleUp-policies")!;
    fireEvent.click(within(scaleUp).getByRole("button", { name: "Remove rate policy 2" }));
    fireEvent.click(save());
    expect(onSave).toHaveBeenCalledWith({
      ...DEFAULT_POLICY,
      behavior: {
        ...DEFAULT_POLICY.behavior,
        scaleUp: {
          ...DEFAULT_POLICY.behavior.scaleUp,
          policies: [{ type: "Pods", value: 6, periodSeconds: 15 }],
        },
      },
    });
  });

  it("edits a map as rows of name and value, and refuses a repeated name", () => {
    const onSave = renderForm();
    const targets = document.getElementById("field-customMetricTargets")!;
    const add = within(targets).getByRole("button", { name: "Add custom metric target" });
    fireEvent.click(add);
    fireEvent.change(screen.getByLabelText("custom metric target 1: Metric name"), {
      target: { value: "queue_depth" },
    });
    fireEvent.change(screen.getByLabelText("custom metric target 1: Target (per replica)"), {
      target: { value: "0" },
    });
    expect(document.getElementById("field-customMetricTargets-error")?.textContent).toBe(
      "queue_depth: must be greater than 0",
    );
    expect(
      screen.getByLabelText("custom metric target 1: Target (per replica)").getAttribute("aria-invalid"),
    ).toBe("true");
    fireEvent.change(screen.getByLabelText("custom metric target 1: Target (per replica)"), {
      target: { value: "50" },
    });
    fireEvent.click(add);
    fireEvent.change(screen.getByLabelText("custom metric target 2: Metric name"), {
      target: { value: "queue_depth" },
    });
    expect(document.getElementById("field-customMetricTargets-error")?.textContent).toBe(
      '1.name: "queue_depth" appears twice',
    );
    expect(save()).toHaveProperty("disabled", true);
    fireEvent.click(within(targets).getByRole("button", { name: "Remove custom metric target 2" }));
    fireEvent.click(save());
    expect(onSave).toHaveBeenCalledWith({ ...DEFAULT_POLICY, customMetricTargets: { queue_depth: 50 } });
  });

  it("shows the diff of a valid change and saves the parsed policy", () => {
    const onSave = renderForm();
    expect(screen.getByText("No changes from the saved policy.")).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Scale-down cooldown (s)"), { target: { value: "42" } });
    const rows = screen.getByTestId("policy-diff").querySelectorAll("tbody tr");
    expect([...rows].map((row) => row.textContent)).toEqual(["scaleDownCooldownSeconds30042"]);
    fireEvent.click(save());
    expect(onSave).toHaveBeenCalledWith({ ...DEFAULT_POLICY, scaleDownCooldownSeconds: 42 });
  });

  it("loads a preset into the form and diffs it against the saved policy", () => {
    renderForm();
    fireEvent.click(screen.getByRole("button", { name: "Preset aggressive" }));
    const expected = diffPolicies(DEFAULT_POLICY, policyFromPreset("aggressive")).map(
      (change) => change.path,
    );
    expect(expected.length).toBeGreaterThan(0);
    const shown = [...screen.getByTestId("policy-diff").querySelectorAll("tbody tr td:first-child")].map(
      (cell) => cell.textContent,
    );
    expect(shown).toEqual(expected);
  });

  it("an empty optional field means unset, an empty required field means the schema's default", () => {
    expect(validateDraft({ ...DEFAULT_POLICY, targetLatencyMs: undefined })).toMatchObject({ ok: true });
    const { minReplicas: _, ...withoutMin } = DEFAULT_POLICY;
    expect(validateDraft(withoutMin)).toMatchObject({ ok: true, policy: { minReplicas: 1 } });
  });
});
