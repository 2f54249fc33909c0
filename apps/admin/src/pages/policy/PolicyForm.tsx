import type { ScalingPolicy } from "@proxyscale/core";
import { type FormEvent, useEffect, useMemo, useRef, useState } from "react";
import {
  type CellKind,
  diffPolicies,
  FIELDS,
  type Field,
  fromRows,
  fromText,
  getPath,
  type Row,
  rowsOf,
  setPath,
  toText,
  validateDraft,
} from "./form.ts";
import { FieldNotes, ValueInput } from "./inputs.tsx";
import { RowsField } from "./RowsField.tsx";

export interface PolicyFormProps {
  /** The policy in force now (what the diff compares against). */
  saved: ScalingPolicy;
  /** What the proxy inherits without a policy of its own (its environment's default, or the global one). */
  inherited: { policy: ScalingPolicy; from: string };
  presets: { name: string; policy: ScalingPolicy }[];
  /** Issues the server answered with, by field path. */
  serverErrors?: Record<string, string[]>;
  /** Without it the form only edits (no save button): the simulator reads the draft through `onDraft`. */
  onSave?: (policy: ScalingPolicy) => void;
  saving?: boolean;
  /** The valid draft after every change, or null while it is invalid. */
  onDraft?: (policy: ScalingPolicy | null) => void;
  /** Makes the element ids unique when two forms share a page. */
  idPrefix?: string;
  label?: string;
}

const GROUPS = [...new Set(FIELDS.map((field) => field.group))];

/**
 * Every policy field, checked by core's schema as the user types; the diff against the saved policy is shown
 * before the save button, which is enabled only for a valid, changed policy.
 */
export function PolicyForm({
  saved,
  inherited,
  presets,
  saving = false,
  serverErrors = {},
  onSave,
  onDraft,
  idPrefix = "field",
  label = "Scaling policy",
}: PolicyFormProps) {
  const idOf = (path: string) => `${idPrefix}-${path.replaceAll(".", "-")}`;
  const [draft, setDraft] = useState<unknown>(saved);
  const [texts, setTexts] = useState<Record<string, string>>(() => textsOf(saved));
  const [rows, setRows] = useState<Record<string, Row[]>>(() => rowsByField(saved));
  // Errors the schema never sees: a map's empty or repeated name.
  const [rowErrors, setRowErrors] = useState<Record<string, string>>({});
  const validation = useMemo(() => validateDraft(draft), [draft]);
  const changes = useMemo(
    () => (validation.ok ? diffPolicies(saved, validation.policy) : []),
    [validation, saved],
  );
  const valid = validation.ok && Object.keys(rowErrors).length === 0;
  const onDraftRef = useRef(onDraft);
  onDraftRef.current = onDraft;
  useEffect(() => {
    onDraftRef.current?.(valid && validation.ok ? validation.policy : null);
  }, [valid, validation]);

  const change = (field: Field, text: string) => {
    setTexts((current) => ({ ...current, [field.path]: text }));
    setDraft((current: unknown) => setPath(current, field.path, fromText(field, text).value));
  };

  const changeRows = (field: Field, next: Row[]) => {
    setRows((current) => ({ ...current, [field.path]: next }));
    const parsed = fromRows(field, next);
    setRowErrors((current) => {
      const { [field.path]: _, ...rest } = current;
      return "error" in parsed ? { ...rest, [field.path]: parsed.error } : rest;
    });
    if ("value" in parsed) setDraft((current: unknown) => setPath(current, field.path, parsed.value));
  };

  const load = (policy: ScalingPolicy) => {
    setDraft(policy);
    setTexts(textsOf(policy));
    setRows(rowsByField(policy));
    setRowErrors({});
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (validation.ok && valid && changes.length > 0) onSave?.(validation.policy);
  };

  return (
    <form onSubmit={submit} noValidate aria-label={label}>
      <fieldset className="presets">
        <legend>Start from</legend>
        {presets.map((preset) => (
          <button key={preset.name} type="button" onClick={() => load(preset.policy)}>
            Preset {preset.name}
          </button>
        ))}
        <button type="button" onClick={() => load(inherited.policy)}>
          Inherited ({inherited.from})
        </button>
        <button type="button" onClick={() => load(saved)}>
          Saved policy
        </button>
      </fieldset>
      {GROUPS.map((group) => (
        <fieldset key={group} className="group">
          <legend>{group}</legend>
          {FIELDS.filter((field) => field.group === group).map((field) => {
            const id = idOf(field.path);
            const errors = [
              ...(rowErrors[field.path] ? [rowErrors[field.path]!] : []),
              ...(validation.errors[field.path] ?? []),
              ...(serverErrors[field.path] ?? []),
            ];
            const inheritedValue = toText(getPath(inherited.policy, field.path));
            if (field.kind === "list" || field.kind === "map") {
              return (
                <RowsField
                  key={field.path}
                  field={field}
                  id={id}
                  rows={rows[field.path] ?? []}
                  errors={errors}
                  inherited={inheritedValue}
                  onChange={(next) => changeRows(field, next)}
                />
              );
            }
            const common = {
              id,
              name: field.path,
              "aria-invalid": errors.length > 0,
              "aria-describedby": `${id}-hint${errors.length > 0 ? ` ${id}-error` : ""}`,
            };
            return (
              <div key={field.path} className={`field${errors.length > 0 ? " invalid" : ""}`}>
                <label htmlFor={id}>{field.label}</label>
                <ValueInput
                  {...common}
                  kind={field.kind as CellKind}
                  options={field.options}
                  value={texts[field.path] ?? ""}
                  placeholder={inheritedValue}
                  onText={(text) => change(field, text)}
                />
                <FieldNotes id={id} path={field.path} inherited={inheritedValue} errors={errors} />
              </div>
            );
          })}
        </fieldset>
      ))}
      {validation.errors[""] ? (
        <p className="field-error" role="alert">
          {validation.errors[""].join("; ")}
        </p>
      ) : null}
      <section aria-labelledby={`${idPrefix}-diff-title`} className="diff">
        <h2 id={`${idPrefix}-diff-title`}>{onSave ? "Changes to save" : "Changes from the saved policy"}</h2>
        {!valid ? (
          <p>Fix the fields marked above to see the change.</p>
        ) : changes.length === 0 ? (
          <p>No changes from the saved policy.</p>
        ) : (
          <table data-testid="policy-diff">
            <thead>
              <tr>
                <th scope="col">field</th>
                <th scope="col">before</th>
                <th scope="col">after</th>
              </tr>
            </thead>
            <tbody>
              {changes.map((entry) => (
                <tr key={entry.path}>
                  <td>{entry.path}</td>
                  <td className="before">{JSON.stringify(entry.before) ?? "unset"}</td>
                  <td className="after">{JSON.stringify(entry.after) ?? "unset"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {onSave ? (
        <button type="submit" className="primary" disabled={!valid || changes.length === 0 || saving}>
          {saving ? "Saving…" : `Save policy${changes.length > 0 ? ` (${changes.length} changes)` : ""}`}
        </button>
      ) : null}
    </form>
  );
}

const isRows = (field: Field) => field.kind === "list" || field.kind === "map";

function textsOf(policy: ScalingPolicy): Record<string, string> {
  return Object.fromEntries(
    FIELDS.filter((field) => !isRows(field)).map((field) => [
      field.path,
      toText(getPath(policy, field.path)),
    ]),
  );
}

function rowsByField(policy: ScalingPolicy): Record<string, Row[]> {
  return Object.fromEntries(
    FIELDS.filter(isRows).map((field) => [field.path, rowsOf(field, getPath(policy, field.path))]),
  );
}
