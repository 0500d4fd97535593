// Lab and vital charts for the demo page: one small SVG per observed channel, drawn from the
// `series` of an explanation (the hourly values the model read, in the channel's unit). The
// normal range is a green band, values outside it sit on pale red and their points are red; the
// orange strip above is the time-series encoder's attention per hour (darker = attended more,
// from the channel's least to its most attended hour), so a reader sees which hours shaped each
// channel's token. Each chart carries a text
// summary for screen readers.

const NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 96;
const STRIP = 6;
const PAD = { left: 34, right: 6, top: STRIP + 4, bottom: 16 };

function el(name, attributes = {}, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  parent?.append(node);
  return node;
}

const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** Whether the series carries the encoder's attention (all zeros: none was computed). */
const hasAttention = (series) => series.attention.some((a) => a > 0);

/** Hours outside the normal range, and the attended hours (attention ≥ 0.8), for the summary. */
export function summarise(series) {
  const observed = series.values.map((v, h) => [h, v]).filter(([, v]) => v !== null);
  const high = observed.filter(([, v]) => v > series.normal_high).length;
  const low = observed.filter(([, v]) => v < series.normal_low).length;
  const attended = series.attention.map((a, h) => [h, a]).filter(([, a]) => a >= 0.8).map(([h]) => h);
  const span = attended.length ? `hours ${attended[0]}–${attended[attended.length - 1] + 1}` : "no hour in particular";
  // a model that computes no attention (the mortality model) says nothing of it
  const attention = hasAttention(series) ? `; the model attended most to ${span}` : "";
  return {
    high,
    low,
    text: `${series.label} (${series.unit}): ${observed.length} hourly values, ${high} above and ${low} below the normal range ` +
      `${fmt(series.normal_low)}–${fmt(series.normal_high)}${attention}.`,
  };
}

/** One channel's chart as an <svg> element. */
export function chart(series) {
  const hours = series.values.length;
  const values = series.values.filter((v) => v !== null);
  let lo = Math.min(series.normal_low, ...values);
  let hi = Math.max(series.normal_high, ...values);
  const margin = (hi - lo) * 0.08 || 1;
  lo -= margin;
  hi += margin;
  const x = (h) => PAD.left + ((W - PAD.left - PAD.right) * h) / Math.max(hours, 1);
  const y = (v) => PAD.top + ((H - PAD.top - PAD.bottom) * (hi - v)) / (hi - lo);
  const summary = summarise(series);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary.text, class: "chart" });
  svg.scale = { x, y };
  el("title", {}, svg).textContent = summary.text;
  const top = PAD.top;
  const bottom = H - PAD.bottom;
  // out of range: above and below the normal band
  el("rect", { x: x(0), y: top, width: x(hours) - x(0), height: Math.max(0, y(series.normal_high) - top), class: "out-of-range" }, svg);
  el("rect", { x: x(0), y: y(series.normal_low), width: x(hours) - x(0), height: Math.max(0, bottom - y(series.normal_low)), class: "out-of-range" }, svg);
  el("rect", { x: x(0), y: y(series.normal_high), width: x(hours) - x(0), height: Math.max(0, y(series.normal_low) - y(series.normal_high)), class: "normal-range" }, svg);
  // the encoder's attention per hour: a strip above the plot, so that it hides none of the
  // ranges; stretched between the channel's least and most attended hours
  const lowest = Math.min(...series.attention);
  const spread = 1 - lowest;
  if (hasAttention(series)) series.attention.forEach((a, h) => {
    const shade = spread > 1e-3 ? (a - lowest) / spread : 1;
    el("rect", { x: x(h), y: 0, width: x(h + 1) - x(h), height: STRIP, class: "attention", "fill-opacity": (0.1 + 0.9 * shade).toFixed(3) }, svg);
  });
  // the values: a line through consecutive observed hours, a point per hour
  let path = "";
  series.values.forEach((v, h) => {
    if (v === null) return;
    const start = h === 0 || series.values[h - 1] === null;
    path += `${start ? "M" : "L"}${x(h + 0.5).toFixed(1)},${y(v).toFixed(1)}`;
  });
  el("path", { d: path, class: "line" }, svg);
  // a point per hour: a dot inside the normal range; outside it, a larger triangle pointing the
  // way the value lies (up above the range, down below), so that shape says it as well as colour
  series.values.forEach((v, h) => {
    if (v === null) return;
    const [cx, cy] = [x(h + 0.5), y(v)];
    if (v <= series.normal_high && v >= series.normal_low) {
      el("circle", { cx, cy, r: 1.8, class: "point" }, svg);
      return;
    }
    const s = v > series.normal_high ? -1 : 1; // SVG y grows downwards
    const d = `M${cx.toFixed(1)},${(cy + 3.2 * s).toFixed(1)}L${(cx - 2.8).toFixed(1)},${(cy - 1.8 * s).toFixed(1)}L${(cx + 2.8).toFixed(1)},${(cy - 1.8 * s).toFixed(1)}Z`;
    el("path", { d, class: `point abnormal ${s < 0 ? "high" : "low"}` }, svg);
  });
  // axes: the normal range's limits and the hours
  for (const v of [series.normal_low, series.normal_high]) {
    el("text", { x: PAD.left - 3, y: y(v) + 3, class: "tick", "text-anchor": "end" }, svg).textContent = fmt(v);
  }
  for (const h of [0, Math.round(hours / 2), hours]) {
    el("text", { x: x(h), y: H - 3, class: "tick", "text-anchor": h === 0 ? "start" : h === hours ? "end" : "middle" }, svg).textContent = `${h} h`;
  }
  return svg;
}

/** Fills `container` with a titled chart per channel, the most abnormal channels first. */
export function drawCharts(container, series) {
  const ranked = series
    .map((s) => ({ s, summary: summarise(s) }))
    .sort((a, b) => b.summary.high + b.summary.low - (a.summary.high + a.summary.low));
  container.replaceChildren(
    ...ranked.map(({ s }) => {
      const figure = document.createElement("figure");
      figure.className = "channel";
      figure.dataset.channel = s.name;
      const caption = document.createElement("figcaption");
      caption.textContent = `${s.label} (${s.unit})`;
      figure.append(caption, chart(s));
      return figure;
    }),
  );
}

/**
 * Marks an observation fact (`evidence` of an explanation) on its channel's chart: a ring at its
 * hour and value, with the hour written beside it; the previous mark is removed. Returns the
 * chart's figure, or null when the channel has no chart.
 */
export function highlight(container, evidence) {
  for (const old of container.querySelectorAll(".evidence-mark")) old.remove();
  for (const old of container.querySelectorAll("figure.selected")) old.classList.remove("selected");
  const figure = [...container.querySelectorAll("figure.channel")].find((f) => f.dataset.channel === evidence.channel);
  const svg = figure?.querySelector("svg");
  if (!svg?.scale) return null;
  const { x, y } = svg.scale;
  const cx = x(Math.floor(evidence.hours) + 0.5);
  // the chart's scale is the hourly means: a single extreme value may lie beyond it, so the ring
  // stays at the plot's edge and the label gives the value
  const cy = Math.min(Math.max(y(evidence.value), PAD.top), H - PAD.bottom);
  const mark = el("g", { class: "evidence-mark" }, svg);
  el("circle", { cx, cy, r: 5 }, mark);
  el("text", { x: cx + 7, y: cy - 4, class: "tick" }, mark).textContent = `${fmt(evidence.value)} at ${Math.floor(evidence.hours)} h`;
  figure.classList.add("selected");
  return figure;
}
