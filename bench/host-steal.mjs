// How much CPU the hypervisor gave to other guests while a sample ran.
// On a shared VM a loaded neighbour can halve one tool's figure for minutes;
// the steal share printed beside each sample tells such samples apart.
import { readFileSync } from 'node:fs';
import { median } from './report.mjs';

/** @typedef {{ steal: number, total: number }} CpuTimes Clock ticks. */

/**
 * The aggregate `cpu` line of /proc/stat: steal and all time, in clock ticks.
 * Null when the text has no such line (not Linux) or no steal column (kernels before 2.6.11).
 * @param {string} text
 * @returns {CpuTimes | null}
 */
export function parseCpuTimes(text) {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) return null;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 8 || fields.some((n) => !Number.isFinite(n))) return null;
  // user nice system idle iowait irq softirq steal [guest guest_nice]: guest
  // time is already counted in user and nice.
  const counted = fields.slice(0, 8);
  return { steal: /** @type {number} */ (counted[7]), total: counted.reduce((a, b) => a + b, 0) };
}

/**
 * Share of all CPU time that was stolen between two readings, 0..1; null
 * when either reading is missing or no time passed.
 * @param {CpuTimes | null} before
 * @param {CpuTimes | null} after
 */
export function stealShare(before, after) {
  if (!before || !after) return null;
  const total = after.total - before.total;
  return total > 0 ? Math.max(0, after.steal - before.steal) / total : null;
}

function readCpuTimes() {
  try {
    return parseCpuTimes(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return null;
  }
}

/** Starts measuring; the returned function gives the steal share since then (null where unknown). */
export function startStealMeter() {
  const before = readCpuTimes();
  return () => stealShare(before, readCpuTimes());
}

/** Samples with more stolen CPU than this were run while a neighbour loaded the host. */
const LOADED_STEAL = 0.05;

/**
 * One line on the host's steal time across all samples (the share of CPU time
 * the hypervisor gave to other guests), or '' where it was not measured.
 * @param {import('./report.mjs').Row[]} rows
 */
export function stealSummary(rows) {
  const all = rows.flatMap((row) =>
    Object.entries(row.tools).flatMap(([tool, t]) => t.steal.flatMap((share, i) => (share === null ? [] : [{ share, where: `${row.id} sample ${i + 1} ${tool}` }]))),
  );
  if (all.length === 0) return '';
  const worst = all.reduce((a, b) => (b.share > a.share ? b : a));
  const pct = (/** @type {number} */ share) => `${(share * 100).toFixed(0)} %`;
  const loaded = all.filter((s) => s.share > LOADED_STEAL).length;
  return `host steal during samples: median ${pct(/** @type {number} */ (median(all.map((s) => s.share))))}, worst ${pct(worst.share)} (${worst.where}); ${loaded} of ${all.length} samples over ${pct(LOADED_STEAL)}, whose figures a loaded host may have lowered`;
}
