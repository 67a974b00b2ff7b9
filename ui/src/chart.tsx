import type { Rate } from './rates.js';

const W = 600;
const H = 140;

/**
 * Submitted and finished per second as two lines, in SVG (no chart library:
 * two series are enough). At a steady state the two rates are equal, so
 * finished is drawn wide and solid and submitted dashed over it: both show.
 */
export function RateChart({ rates }: { rates: readonly Rate[] }) {
  if (rates.length < 2) return <p class="empty">Measuring… the chart starts after two samples.</p>;
  const t0 = rates[0]!.at;
  const t1 = rates[rates.length - 1]!.at;
  const top = Math.max(1, ...rates.map((r) => Math.max(r.submitted, r.finished)));
  const x = (at: number) => ((at - t0) / Math.max(1, t1 - t0)) * (W - 40) + 36;
  const y = (v: number) => H - 18 - (v / top) * (H - 28);
  const line = (pick: (r: Rate) => number) => rates.map((r) => `${x(r.at).toFixed(1)},${y(pick(r)).toFixed(1)}`).join(' ');
  const last = rates[rates.length - 1]!;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`submitted ${last.submitted.toFixed(1)} per second, finished ${last.finished.toFixed(1)} per second`}>
        <line x1="36" x2={W - 4} y1={y(0)} y2={y(0)} class="axis" />
        <line x1="36" x2={W - 4} y1={y(top)} y2={y(top)} class="grid" />
        <text x="30" y={y(top) + 4} text-anchor="end">{top < 10 ? top.toFixed(1) : Math.round(top)}</text>
        <text x="30" y={y(0) + 4} text-anchor="end">0</text>
        <text x="36" y={H - 2}>{Math.round((t1 - t0) / 1000)} s ago</text>
        <text x={W - 4} y={H - 2} text-anchor="end">now</text>
        <polyline points={line((r) => r.finished)} class="finished" />
        <polyline points={line((r) => r.submitted)} class="submitted" />
      </svg>
      <figcaption>
        <span class="key submitted">submitted {last.submitted.toFixed(1)}/s</span> <span class="key finished">finished {last.finished.toFixed(1)}/s</span>
      </figcaption>
    </figure>
  );
}
