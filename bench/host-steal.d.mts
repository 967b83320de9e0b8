export interface CpuTimes {
  steal: number;
  total: number;
}
export function parseCpuTimes(text: string): CpuTimes | null;
export function stealShare(before: CpuTimes | null, after: CpuTimes | null): number | null;
export function startStealMeter(): () => number | null;
export function stealSummary(rows: { id: string; tools: Record<string, { steal: (number | null)[] }> }[]): string;
