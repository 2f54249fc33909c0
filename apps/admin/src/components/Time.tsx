/** The UTC offset of `date` in the browser's time zone, e.g. "UTC+01:00". */
export function utcOffset(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** A time in the browser's time zone; hovering (or focusing) shows it in UTC with the offset. */
export function Time({ value }: { value: string | number | Date | null | undefined }) {
  if (value === null || value === undefined) return <span>—</span>;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return <span>—</span>;
  return (
    <time dateTime={date.toISOString()} title={`${date.toISOString()} (local time is ${utcOffset(date)})`}>
      {date.toLocaleString()}
    </time>
  );
}
