// Hand-written SVG charts: a stacked bar chart and a small line chart. Labels are text nodes.

import { svg } from "./dom.js";

const PAD = { top: 12, right: 12, bottom: 28, left: 44 };

// Axis ticks at round steps: 0, step, 2·step … top ≥ max.
export function ticks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const result = [];
  for (let v = 0; v < max + step - 1e-9; v += step) result.push(Number(v.toFixed(6)));
  return result;
}

function frame(width, height, label, yTicks, format) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart" },
    svg("title", {}, label));
  const top = yTicks[yTicks.length - 1];
  const y = (v) => PAD.top + (height - PAD.top - PAD.bottom) * (1 - v / top);
  for (const t of yTicks) {
    root.append(
      svg("line", { x1: PAD.left, x2: width - PAD.right, y1: y(t), y2: y(t), class: "grid" }),
      svg("text", { x: PAD.left - 6, y: y(t) + 4, class: "axis", "text-anchor": "end" }, format(t)),
    );
  }
  return { root, y, plotWidth: width - PAD.left - PAD.right };
}

// series: [{key, label, color}]; points: [{label, tip, values: {key: n}}] drawn left to right.
export function stackedBars(points, series, { label, width = 760, height = 260, format = String } = {}) {
  const max = Math.max(0, ...points.map((p) => series.reduce((s, { key }) => s + (p.values[key] || 0), 0)));
  const { root, y, plotWidth } = frame(width, height, label, ticks(max), format);
  const slot = plotWidth / Math.max(points.length, 1);
  const barWidth = Math.max(2, Math.min(28, slot * 0.7));
  const every = Math.ceil(points.length / Math.max(1, Math.floor(plotWidth / 90)));
  points.forEach((point, i) => {
    const x = PAD.left + slot * i + (slot - barWidth) / 2;
    const group = svg("g", { class: "bar" }, svg("title", {}, point.tip));
    let base = 0;
    for (const { key, color } of series) {
      const value = point.values[key] || 0;
      if (value > 0) {
        group.append(svg("rect", { x, width: barWidth, y: y(base + value), height: y(base) - y(base + value), fill: color }));
      }
      base += value;
    }
    // An invisible full-height target so thin or empty bars still show their tooltip.
    group.append(svg("rect", { x: PAD.left + slot * i, width: slot, y: PAD.top, height: y(0) - PAD.top, class: "hit" }));
    root.append(group);
    if (i % every === 0) {
      root.append(svg("text", { x: x + barWidth / 2, y: height - 8, class: "axis", "text-anchor": "middle" }, point.label));
    }
  });
  return root;
}

// points: [{label, tip, value}] as one line with dots; empty values (null) leave a gap.
export function lineChart(points, { label, color = "#3b7dd8", width = 360, height = 150, format = String } = {}) {
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const { root, y, plotWidth } = frame(width, height, label, ticks(Math.max(0, ...values), 3), format);
  const step = plotWidth / Math.max(points.length - 1, 1);
  const x = (i) => PAD.left + (points.length === 1 ? plotWidth / 2 : step * i);
  let path = "";
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    path += `${path && points[i - 1]?.value != null ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
  });
  root.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2 }));
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    root.append(svg("circle", { cx: x(i), cy: y(p.value), r: 3, fill: color }, svg("title", {}, p.tip)));
  });
  if (points.length) {
    root.append(svg("text", { x: x(0), y: height - 8, class: "axis", "text-anchor": "start" }, points[0].label));
    if (points.length > 1) {
      root.append(svg("text", { x: x(points.length - 1), y: height - 8, class: "axis", "text-anchor": "end" }, points[points.length - 1].label));
    }
  }
  return root;
}
