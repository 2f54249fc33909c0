import { DEFAULT_POLICY, policyFromPreset } from "@proxyscale/core";
import { fireEvent, render, screen } from "@testing-library/react";
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
    // Every field core's schema fills in is covered by some form field (lists and maps as one JSON field).
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

  it("reports a JSON syntax error and a nested schema error on the list field", () => {
    renderForm();
    const policies = screen.getByLabelText("Rate policies (JSON list)", {
      selector: "#field-behavior-scaleUp-policies",
    });
    fireEvent.change(policies, { target: { value: "[{" } });
    expect(document.getElementById("field-behavior-scaleUp-policies-error")?.textContent).toMatch(
      /^is not valid JSON/,
    );
    fireEvent.change(policies, { target: { value: '[{"type":"Pods","value":0,"periodSeconds":15}]' } });
    expect(document.getElementById("field-behavior-scaleUp-policies-error")?.textContent).toBe(
      "0.value: must be greater than 0",
    );
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
