import { useEffect, useMemo, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  color: string;
  /** Dashed: thresholds and targets. */
  dash?: boolean;
  /** Step line (replica counts). */
  stepped?: boolean;
  /** Points only, no line (event markers). */
  markers?: boolean;
  /**
   * A horizontal line at this value across the data (a threshold or a target; null: not set). It takes no column
   * of `data`: it is drawn through two points, so it costs nothing per sample.
   */
  level?: number | null;
}

/**
 * A filled area between two series (indices into `series`): uPlot fills where `from` lies above `to`, so a band
 * and its reverse shade the two sides of a crossing in different colours.
 */
export interface ChartBand {
  from: number;
  to: number;
  fill: string;
}

export interface ChartMarker {
  /** Epoch seconds, as uPlot's x values. */
  x: number;
  text: string;
}

interface ChartProps {
  title: string;
  /** x in epoch seconds, then one array per series that is not a `level` (null = no value). */
  data: [number[], ...(number | null)[][]];
  series: ChartSeries[];
  height?: number;
  /**
   * Tooltips for the points of the `markers` series: the nearest marker to the cursor is shown. Each marker is
   * also a focusable button on the time axis, so the keyboard reaches the same tooltip.
   */
  markers?: ChartMarker[];
  /** The x window in epoch seconds (the chosen range), so sparse data is not stretched over years. */
  xRange?: [number, number];
  bands?: ChartBand[];
}

/** Few points are drawn as dots as well, so a single sample is visible. */
const SPARSE_POINTS = 60;

const stepped = uPlot.paths.stepped?.({ align: 1 });

/** The data uPlot draws: the given columns, with each `level` series' line (its first and last x) in its place. */
function withLevels(data: ChartProps["data"], series: ChartSeries[]): uPlot.AlignedData {
  const [x, ...columns] = data;
  let next = 0;
  return [
    x,
    ...series.map((entry) => {
      if (entry.level === undefined) return columns[next++] ?? [];
      const line: (number | null)[] = new Array(x.length).fill(null);
      if (entry.level !== null && x.length > 0) line[0] = line[x.length - 1] = entry.level;
      return line;
    }),
  ];
}

/** A uPlot time series that follows its container's width. uPlot draws on canvas and stays fast past 10k points. */
export function Chart({ title, data, series, height = 200, markers = [], xRange, bands = [] }: ChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const markersRef = useRef(markers);
  markersRef.current = markers;
  const xRangeRef = useRef(xRange);
  xRangeRef.current = xRange;
  const [tip, setTip] = useState<{ left: number; top: number; text: string } | null>(null);
  // Where each marker sits, in px from the chart's left edge (plot area offset included); set on every draw.
  const [markerLefts, setMarkerLefts] = useState<number[]>([]);
  const seriesKey = JSON.stringify(series);
  // biome-ignore lint/correctness/useExhaustiveDependencies: series is compared by value (callers pass new literals)
  const plotted = useMemo(() => withLevels(data, series), [data, seriesKey]);
  // The data the plot was built with: the update effect below skips it instead of setting it twice.
  const builtWith = useRef<uPlot.AlignedData | null>(null);

  // biome-ignore lint/correctness/useExhaustiveDependencies: the plot is rebuilt only when its series change; data updates go through setData below
  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 200),
      height,
      cursor: { points: { size: 6 } },
      legend: { live: true },
      scales: {
        x: { time: true, range: (_u, min, max) => xRangeRef.current ?? [min, max] },
      },
      axes: [
        { stroke: "#1f2937", grid: { stroke: "#e5e7eb" } },
        { stroke: "#1f2937", grid: { stroke: "#e5e7eb" }, size: 50 },
      ],
      // uPlot's series 0 is x, hence the +1.
      bands: bands.map((band) => ({ series: [band.from + 1, band.to + 1], fill: band.fill })),
      series: [
        { label: "time" },
        ...series.map(
          (entry): uPlot.Series => ({
            label: entry.label,
            stroke: entry.color,
            width: entry.markers ? 0 : 2,
            ...(entry.dash ? { dash: [6, 4] } : {}),
            ...(entry.stepped && stepped ? { paths: stepped } : {}),
            ...(entry.level === undefined ? {} : { value: () => entry.level ?? "--" }),
            ...(entry.markers
              ? { points: { show: true, size: 10, fill: entry.color, stroke: "#111827" }, paths: () => null }
              : { points: { show: (u) => u.data[0].length <= SPARSE_POINTS, size: 5 } }),
            spanGaps: !entry.markers,
          }),
        ),
      ],
      hooks: {
        // When the canvas first shows data: the chart benchmark and the e2e wait for it.
        draw: [
          (u) => {
            if (!element.dataset.drawnAt && u.data[0].length > 0) {
              element.dataset.drawnAt = String(performance.now());
              element.dataset.points = String(u.data[0].length);
            }
            const lefts = markersRef.current.map((marker) => u.over.offsetLeft + u.valToPos(marker.x, "x"));
            setMarkerLefts((current) =>
              current.length === lefts.length && current.every((left, i) => left === lefts[i])
                ? current
                : lefts,
            );
          },
        ],
        setCursor: [
          (u) => {
            const left = u.cursor.left ?? -1;
            if (left < 0 || markersRef.current.length === 0) return setTip(null);
            let best: { marker: ChartMarker; distance: number } | null = null;
            for (const marker of markersRef.current) {
              const distance = Math.abs(u.valToPos(marker.x, "x") - left);
              if (distance < 12 && (!best || distance < best.distance)) best = { marker, distance };
            }
            setTip(
              best
                ? { left: u.over.offsetLeft + u.valToPos(best.marker.x, "x"), top: 8, text: best.marker.text }
                : null,
            );
          },
        ],
      },
    };
    const instance = new uPlot(options, plotted, element);
    plot.current = instance;
    builtWith.current = plotted;
    element.dataset.drawn = "true";
    const resize = new ResizeObserver(() =>
      instance.setSize({ width: Math.max(element.clientWidth, 200), height }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      instance.destroy();
      plot.current = null;
    };
  }, [height, seriesKey, JSON.stringify(bands)]);

  useEffect(() => {
    if (builtWith.current !== plotted) plot.current?.setData(plotted);
  }, [plotted]);

  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div className="chart-wrap">
        <div className="chart-area" ref={container} role="img" aria-label={`${title} chart`} />
        {markers.map((marker, index) =>
          markerLefts[index] === undefined ? null : (
            <button
              // biome-ignore lint/suspicious/noArrayIndexKey: markers are positional, in time order
              key={index}
              type="button"
              className="chart-marker"
              style={{ left: markerLefts[index] }}
              aria-label={marker.text}
              onFocus={() => setTip({ left: markerLefts[index]!, top: 8, text: marker.text })}
              onBlur={() => setTip(null)}
            />
          ),
        )}
        {tip ? (
          <div className="chart-tip" role="tooltip" style={{ left: tip.left, top: tip.top }}>
            {tip.text}
          </div>
        ) : null}
      </div>
    </figure>
  );
}

/** A small load-score line for tables. */
export function Sparkline({ values, label }: { values: { at: number; value: number }[]; label: string }) {
  const container = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = container.current;
    if (!element || values.length === 0) return;
    const instance = new uPlot(
      {
        width: 120,
        height: 32,
        cursor: { show: false },
        legend: { show: false },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max, 1)] } },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: "#1d4ed8", width: 1.5, points: { show: values.length <= 2, size: 4 } }],
      },
      [values.map((point) => point.at / 1000), values.map((point) => point.value)],
      element,
    );
    return () => instance.destroy();
  }, [values]);
  if (values.length === 0) return <span className="muted">no data</span>;
  return <div ref={container} className="sparkline" role="img" aria-label={label} />;
}
