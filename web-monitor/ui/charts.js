// Small SVG charts of the last hour (one line per figure, 0–100 %), drawn with DOM calls.

import { el, setChildren } from './common.js';

const WIDTH = 300;
const HEIGHT = 60;

/**
 * Draws `points` ([{t: seconds, v: number|null}], oldest first) into `svg` over the `span`
 * seconds before `now`. A missing value breaks the line, so a gap shows as a gap instead of a
 * straight line between two real readings.
 */
export function sparkline(svg, points, { span, now, max = 100 }) {
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const x = (t) => ((t - (now - span)) / span) * WIDTH;
  const y = (v) => HEIGHT - (Math.max(0, Math.min(max, v)) / max) * HEIGHT;
  const lines = [];
  let current = [];
  for (const p of points) {
    if (p.t < now - span) continue;
    if (p.v === null || p.v === undefined || !Number.isFinite(p.v)) {
      if (current.length) lines.push(current);
      current = [];
    } else {
      current.push(`${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
    }
  }
  if (current.length) lines.push(current);
  const grid = [25, 50, 75].map((v) => el('svg:line', { class: 'grid', x1: 0, x2: WIDTH, y1: y(v), y2: y(v) }));
  const drawn = lines.map((coords) => coords.length === 1
    ? el('svg:circle', { class: 'dot', cx: coords[0].split(',')[0], cy: coords[0].split(',')[1], r: 1.5 })
    : el('svg:polyline', { class: 'line', points: coords.join(' ') }));
  setChildren(svg, grid, drawn);
  svg.dataset.points = String(lines.reduce((n, l) => n + l.length, 0));
}
