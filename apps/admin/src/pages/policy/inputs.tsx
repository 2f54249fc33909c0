import type { CellKind } from "./form.ts";

/** Under a field: its path and inherited value (the hint), then its errors (`${id}-hint`, `${id}-error`). */
export function FieldNotes({
  id,
  path,
  inherited,
  errors,
}: {
  id: string;
  path: string;
  inherited: string;
  errors: string[];
}) {
  return (
    <>
      <small id={`${id}-hint`} className="hint">
        {path} · inherited: {inherited === "" ? "unset" : inherited}
      </small>
      {errors.length > 0 ? (
        <p id={`${id}-error`} className="field-error" role="alert">
          {errors.join("; ")}
        </p>
      ) : null}
    </>
  );
}

/** One value's control: a select over `options`, or a number or text input; `onText` gets what was entered. */
export function ValueInput({
  kind,
  options,
  onText,
  ...attributes
}: {
  kind: CellKind;
  options?: readonly string[];
  onText: (text: string) => void;
  id?: string;
  name: string;
  value: string;
  placeholder?: string;
  "aria-label"?: string;
  "aria-invalid"?: boolean;
  "aria-describedby"?: string;
}) {
  if (kind === "select") {
    const { placeholder: _, ...selectAttributes } = attributes;
    return (
      <select {...selectAttributes} onChange={(event) => onText(event.target.value)}>
        {options?.map((option) => (
          <option key={option}>{option}</option>
        ))}
      </select>
    );
  }
  return (
    <input
      {...attributes}
      type={kind === "number" ? "number" : "text"}
      step="any"
      onChange={(event) => onText(event.target.value)}
    />
  );
}
