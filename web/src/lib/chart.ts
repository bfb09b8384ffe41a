// Time series charts (uPlot) with a hover tooltip.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom";
import { num } from "./fmt";

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
}

/**
 * chart draws series over x (Unix seconds, or plain numbers when
 * xLabel is set) and shows the values under the cursor in a tooltip.
 */
export function chart(name: string, label: string, x: number[], series: Series[], opts: { xLabel?: string; height?: number } = {}): HTMLElement {
  const box = h("div", { class: "chart", "data-chart": name, role: "img", "aria-label": label + " (the values are in the table below)" });
  const tip = h("div", { class: "tip", "aria-hidden": "true" });
  const width = () => Math.max(320, Math.min(box.clientWidth || 760, 1100));
  const fmtX = (v: number) => opts.xLabel ? `${opts.xLabel} ${v}` : new Date(v * 1000).toISOString().slice(0, opts.xLabel === undefined && x.length > 1 && x[1] - x[0] < 86400 ? 16 : 10).replace("T", " ");
  const plot = new uPlot({
    width: width(),
    height: opts.height ?? 260,
    scales: { x: { time: !opts.xLabel } },
    tzDate: (ts: number) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    axes: [{ stroke: "#333", grid: { stroke: "#eee" } }, { stroke: "#333", grid: { stroke: "#eee" }, values: (_u, vs) => vs.map((v) => num(v)) }],
    series: [{ label: opts.xLabel ?? "UTC" }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: x.length < 60 } }))],
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    hooks: {
      setCursor: [(u: uPlot) => {
        const i = u.cursor.idx;
        if (i === null || i === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
          tip.style.display = "none";
          return;
        }
        tip.replaceChildren(h("strong", {}, fmtX(x[i])), ...series.map((s) => h("div", {}, `${s.label}: ${s.values[i] === null ? "–" : num(s.values[i]!)}`)));
        tip.style.display = "block";
        tip.style.left = Math.min(u.cursor.left + 60, u.width - 160) + "px";
        tip.style.top = (u.cursor.top ?? 0) + "px";
      }],
    },
  }, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, box);
  box.append(tip);
  const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: opts.height ?? 260 }));
  ro.observe(box);
  return box;
}
