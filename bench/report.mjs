// Medians, ratios and the two renderings of the results table.

/**
 * @typedef {import('./workloads.mjs').Metric} Metric
 * @typedef {{ values: number[], errors: string[], steal: (number | null)[] }} ToolSamples
 * @typedef {{ metric: Metric, tools: Record<string, ToolSamples> }} MetricResult
 * @typedef {{ id: string, label: string, unit: string, better: string, target: number,
 *   tools: Record<string, { median: number | null, samples: number[], errors: string[], steal: (number | null)[] }>,
 *   ratio: number | null, targetMet: boolean | null }} Row
 */

/** @param {number[]} values */
export function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? /** @type {number} */ (sorted[mid]) : (/** @type {number} */ (sorted[mid - 1]) + /** @type {number} */ (sorted[mid])) / 2;
}

/**
 * Ratio > 1 means tmount is better: throughput tmount/sshfs, time sshfs/tmount.
 * @param {'higher' | 'lower'} better @param {number | null} tmount @param {number | null} sshfs
 */
export function ratioOf(better, tmount, sshfs) {
  if (tmount === null || sshfs === null || tmount <= 0 || sshfs <= 0) return null;
  return better === 'higher' ? tmount / sshfs : sshfs / tmount;
}

/** @param {MetricResult[]} results @param {string[]} tools @returns {Row[]} */
export function summarize(results, tools) {
  return results.map(({ metric, tools: samples }) => {
    /** @type {Row['tools']} */
    const byTool = {};
    for (const tool of tools) {
      const s = samples[tool] ?? { values: [], errors: [], steal: [] };
      byTool[tool] = { median: median(s.values), samples: s.values, errors: s.errors, steal: s.steal };
    }
    const ratio = tools.includes('sshfs') ? ratioOf(metric.better, byTool.tmount?.median ?? null, byTool.sshfs?.median ?? null) : null;
    return { ...metric, tools: byTool, ratio, targetMet: ratio === null ? null : ratio >= metric.target };
  });
}

/** @param {number} value @param {string} unit */
export function formatValue(value, unit) {
  if (unit === 's') return value < 1 ? value.toFixed(3) : value < 10 ? value.toFixed(2) : value.toFixed(1);
  if (value >= 100) return value.toFixed(0);
  return value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** @param {Row} row @param {string} tool */
function cell(row, tool) {
  const t = row.tools[tool];
  if (!t) return '—';
  const total = t.samples.length + t.errors.length;
  if (total === 0) return 'not run';
  if (t.median === null) return t.errors.some((e) => /did not finish within/.test(e)) ? 'timeout' : 'failed';
  const value = formatValue(t.median, row.unit);
  return t.errors.length ? `${value} (${t.samples.length}/${total} ok)` : value;
}

/** @param {Row} row */
function metricCell(row) {
  return `${row.id}: ${row.label} (${row.unit})`;
}

/** @param {Row} row @param {boolean} compared */
function ratioCell(row, compared) {
  if (!compared || row.ratio === null) return '—';
  return `${row.ratio.toFixed(2)}×`;
}

/** @param {Row} row @param {boolean} compared */
function targetCell(row, compared) {
  const goal = `≥ ${row.target.toFixed(1)}×`;
  if (!compared || row.targetMet === null) return goal;
  return `${goal} ${row.targetMet ? 'met' : 'missed'}`;
}

/** @param {Row[]} rows @param {string[]} tools */
function cells(rows, tools) {
  const compared = tools.includes('sshfs');
  const header = ['metric', 'tmount', 'sshfs', 'ratio (↑ better)', 'target'];
  const body = rows.map((row) => [metricCell(row), cell(row, 'tmount'), compared ? cell(row, 'sshfs') : 'skipped', ratioCell(row, compared), targetCell(row, compared)]);
  return { header, body };
}

/** @param {Row[]} rows @param {string[]} tools */
export function textTable(rows, tools) {
  const { header, body } = cells(rows, tools);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => /** @type {string} */ (r[i]).length)));
  const line = (/** @type {string[]} */ r) => r.map((c, i) => (i === 0 ? c.padEnd(/** @type {number} */ (widths[i])) : c.padStart(/** @type {number} */ (widths[i])))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...body.map(line)].join('\n');
}

/** @param {Row[]} rows @param {string[]} tools */
export function markdownTable(rows, tools) {
  const { header, body } = cells(rows, tools);
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...body.map((r) => `| ${r.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`),
  ].join('\n');
}

/**
 * One line: each workload's median peak resident memory per tool (all of its
 * processes: sshfs with its ssh), in MiB.
 * @param {Record<string, Record<string, number[]>>} memory   KiB per workload, tool and sample
 * @param {string[]} tools
 */
export function memorySummary(memory, tools) {
  const parts = Object.entries(memory).map(([workload, byTool]) => {
    const shown = tools.map((tool) => {
      const m = median(byTool[tool] ?? []);
      return m === null ? '—' : (m / 1024).toFixed(0);
    });
    return `${workload} ${shown.join(' / ')}`;
  });
  return parts.length ? `peak memory (MiB, resident, median; ${tools.join(' / ')}): ${parts.join(', ')}` : '';
}
