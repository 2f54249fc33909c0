import { cellOf, type Field, type Row } from "./form.ts";
import { FieldNotes, ValueInput } from "./inputs.tsx";

export interface RowsFieldProps {
  field: Field;
  id: string;
  rows: Row[];
  errors: string[];
  /** The inherited value, as the hint shows it. */
  inherited: string;
  onChange: (rows: Row[]) => void;
}

/**
 * A list (rate policies, step adjustments) or a map (custom metric targets) as a table of rows: one input per
 * column, and buttons to add and remove rows. An error on a row's column marks that input.
 */
export function RowsField({ field, id, rows, errors, inherited, onChange }: RowsFieldProps) {
  const columns = field.columns ?? [];
  const invalid = new Set(
    errors.flatMap((error) => {
      const cell = cellOf(field, rows, error);
      return cell ? [`${cell.row}.${cell.column}`] : [];
    }),
  );
  const set = (index: number, key: string, text: string) =>
    onChange(rows.map((row, at) => (at === index ? { ...row, [key]: text } : row)));
  const blank = (): Row =>
    Object.fromEntries(columns.map((column) => [column.key, column.options?.[0] ?? ""]));

  return (
    <fieldset
      id={id}
      className={`field rows${errors.length > 0 ? " invalid" : ""}`}
      aria-describedby={`${id}-hint${errors.length > 0 ? ` ${id}-error` : ""}`}
    >
      <legend>{field.label}</legend>
      {rows.length === 0 ? <p className="hint">None.</p> : null}
      {rows.length > 0 ? (
        <table>
          <thead>
            <tr>
              {columns.map((column) => (
                <th key={column.key} scope="col">
                  {column.label}
                </th>
              ))}
              <th scope="col">
                <span className="visually-hidden">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, index) => (
              // Rows have no identity of their own: the position is what the schema's errors name.
              // biome-ignore lint/suspicious/noArrayIndexKey: see above
              <tr key={index}>
                {columns.map((column) => {
                  const common = {
                    name: `${field.path}.${index}.${column.key}`,
                    "aria-label": `${field.item} ${index + 1}: ${column.label}`,
                    "aria-invalid": invalid.has(`${index}.${column.key}`),
                    value: row[column.key] ?? "",
                  };
                  return (
                    <td key={column.key}>
                      <ValueInput
                        {...common}
                        kind={column.kind}
                        options={column.options}
                        onText={(text) => set(index, column.key, text)}
                      />
                    </td>
                  );
                })}
                <td>
                  <button
                    type="button"
                    aria-label={`Remove ${field.item} ${index + 1}`}
                    onClick={() => onChange(rows.filter((_, at) => at !== index))}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <button type="button" onClick={() => onChange([...rows, blank()])}>
        Add {field.item}
      </button>
      <FieldNotes id={id} path={field.path} inherited={inherited} errors={errors} />
    </fieldset>
  );
}
