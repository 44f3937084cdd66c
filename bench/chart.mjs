// Plain SVG bar charts for the bench results (no dependencies): panels stacked vertically, one
// horizontal bar per target, its value at the end of the bar and an optional note after it.
// Used by bench/run.mjs for results/latest.svg (fan-out) and results/cross.svg (cross-replica).

const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';

/** Escape text for SVG. */
function esc(text) {
  return String(text).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** 1.23M, 456k, 789 */
export function fmtRate(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}k`;
  return n.toFixed(0);
}

/**
 * An SVG document of bar-chart panels.
 * @param {{title: string, subtitle?: string, panels: {title: string, unit?: string,
 *   bars: {label: string, value: number | null, note?: string, kind?: "ours" | "ref" | "ceiling"}[]}[]}} chart
 * @returns {string} The SVG text.
 */
export function barChart({ title, subtitle, panels }) {
  const width = 960;
  const labelW = 210;
  const noteW = 230;
  const barMax = width - labelW - noteW - 70;
  const rowH = 20;
  const colors = { ours: "#2f6fdf", ref: "#9aa5b1", ceiling: "#e0a030" };
  const out = [];
  let y = 34;
  out.push(`<text x="16" y="24" font-size="17" font-weight="600" ${FONT}>${esc(title)}</text>`);
  if (subtitle) {
    out.push(
      `<text x="16" y="${y + 8}" font-size="11.5" fill="#555" ${FONT}>${esc(subtitle)}</text>`,
    );
    y += 16;
  }
  for (const panel of panels) {
    y += 22;
    out.push(
      `<text x="16" y="${y}" font-size="13.5" font-weight="600" ${FONT}>${esc(panel.title)}</text>`,
    );
    y += 8;
    const max = Math.max(1, ...panel.bars.map((b) => b.value ?? 0));
    for (const bar of panel.bars) {
      const w = bar.value ? Math.max(1, (bar.value / max) * barMax) : 0;
      const cy = y + rowH / 2 + 4;
      out.push(
        `<text x="${labelW}" y="${cy}" font-size="12" text-anchor="end" ${FONT}>${
          esc(bar.label)
        }</text>`,
      );
      out.push(
        `<rect x="${labelW + 8}" y="${y + 3}" width="${w.toFixed(1)}" height="${
          rowH - 6
        }" rx="2" fill="${colors[bar.kind ?? "ref"]}"/>`,
      );
      const value = bar.value === null || bar.value === undefined
        ? "no result"
        : `${fmtRate(bar.value)}${panel.unit ? ` ${panel.unit}` : ""}`;
      out.push(
        `<text x="${labelW + 14 + w}" y="${cy}" font-size="11.5" ${FONT}>${esc(value)}${
          bar.note ? `<tspan fill="#555">  ${esc(bar.note)}</tspan>` : ""
        }</text>`,
      );
      y += rowH;
    }
  }
  y += 26;
  const legend = [["ours", "hubbub"], ["ref", "reference"], ["ceiling", "raw ceiling"]];
  let lx = 16;
  for (const [kind, text] of legend) {
    out.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${colors[kind]}"/>`);
    out.push(`<text x="${lx + 17}" y="${y}" font-size="11.5" ${FONT}>${text}</text>`);
    lx += 40 + text.length * 7;
  }
  y += 14;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...out,
    `</svg>`,
    ``,
  ].join("\n");
}
