// The dashboard page: the stream, the services, the machine, health and alerts, live logs
// and the tools, updated from the server's events (/api/events, /api/logs/stream) without
// reloading. Every value goes into the page as text (textContent, DOM calls), never as HTML.

import {
  EventFeed, act, el, formatBytes, formatDuration, formatNumber, formatTime, getJson, mountHeader, session,
  setChildren, setText,
} from './common.js';
import { sparkline } from './charts.js';
import { Player } from './player.js';
import { WhepPlayer } from './webrtc.js';

/** Status older than this (the server sends one a second) is greyed with its age. */
const STALE_MS = 4000;
/** How often the watchdog's alert history is read again. */
const ALERTS_INTERVAL_MS = 15000;
/** Log lines kept on the page; older ones are dropped. */
const MAX_LOG_LINES = 500;
/** Log lines asked for when the log view opens or its filter changes. */
const INITIAL_LOG_LINES = 200;
const HLS_URL = '/hls/desktop/playlist.m3u8';
/** The same stream with parts (hls.js plays it in its low-latency mode). */
const LL_HLS_URL = '/hls/desktop/ll.m3u8';

const $ = (id) => document.getElementById(id);

mountHeader('/');
session.subscribe((s) => document.body.classList.toggle('logged-out', !s.loggedIn));

// ---- Freshness: one place decides what is stale -------------------------------------------

const livePanels = ['stream', 'services', 'machine', 'health'].map($);
// Ages on this page are measured on the browser's monotonic clock (performance.now()): a step
// of its wall clock (NTP, an operator) makes no "366 d ago" and no negative age. The charts
// too place their points on it (see `history`), not on the server's wall clock or the
// browser's, either of which may step, or be a year off the other.
let lastStatusAt = 0;
/** The browser's monotonic clock, in seconds. */
const monoNow = () => performance.now() / 1000;
let feedState = 'connecting';
/** The newest status, for the player's caption. */
let lastStatus = null;

function showFreshness() {
  const age = lastStatusAt ? Math.max(0, performance.now() - lastStatusAt) : Infinity;
  const stale = age > STALE_MS || feedState === 'lost';
  for (const panel of livePanels) {
    panel.classList.toggle('stale', stale && lastStatusAt > 0);
    const label = panel.querySelector('.age');
    label.hidden = !(stale && lastStatusAt > 0);
    if (!label.hidden) setText(label, `as of ${formatDuration(age / 1000)} ago`);
  }
  const banner = $('connection');
  let text = '';
  if (feedState === 'login') text = 'This dashboard is private (public_read is off): log in above to see it.';
  else if (feedState === 'lost') text = 'Dashboard connection lost, retrying…';
  else if (lastStatusAt === 0) text = 'Connecting to the dashboard…';
  else if (stale) text = `No update from the dashboard for ${formatDuration(age / 1000)}; the figures below are old.`;
  banner.hidden = text === '';
  banner.classList.toggle('error', feedState === 'lost' || stale);
  setText(banner, text);
}
setInterval(showFreshness, 1000);

// ---- Status ---------------------------------------------------------------------------------

function unreachableText(status, part, what) {
  const u = (status.unreachable || []).find((x) => x.part === part);
  return u ? `${what} cannot be reached: ${u.error}` : '';
}

function showNotice(id, text) {
  const node = $(id);
  node.hidden = !text;
  setText(node, text);
}

function bitrate(kbps) {
  if (kbps === null || kbps === undefined) return '—';
  return kbps >= 1000 ? formatNumber(kbps / 1000, 'Mbit/s', 2) : formatNumber(kbps, 'kbit/s', 0);
}

function showStream(status) {
  const h = status.health;
  const down = unreachableText(status, 'streamer', 'The streamer');
  showNotice('stream-unreachable', down);
  const state = $('stream-state');
  const unit = (status.services || []).find((u) => u.name === 'desktop-streamer.service');
  let label = h ? h.current_state : down ? 'unreachable' : 'unknown';
  if (!h && unit && unit.active_state !== 'active') label = `${unit.active_state} (service)`;
  state.dataset.state = h ? h.current_state : 'unreachable';
  setText(state, label);
  setText($('fps'), h ? formatNumber(h.fps, 'fps') : '—');
  setText($('bitrate'), h ? bitrate(h.bitrate_kbps) : '—');
  const age = h ? h.newest_segment_age_seconds : null;
  setText($('segment-age'), age === null || age === undefined ? '—' : `${formatDuration(age)} old`);
  $('segment-age').classList.toggle('warning-text', Boolean(h && !h.stream_active));
  const s = status.stream;
  setText($('segments'), s ? `${s.segment_count} (${formatNumber(s.total_size_mb, 'MB')})` : '—');
  setText($('encoder'), h && h.encoder ? h.encoder : '—');
  const m = h && h.monitor;
  setText($('monitor'), m ? `${m.name} ${m.width}×${m.height} at ${m.x},${m.y}` : '—');
  showNotice('frozen', h && h.frozen
    ? `Frozen picture: the captured monitor has not changed for ${formatDuration(h.picture_unchanged_seconds)}; the kiosk application may have hung.`
    : '');
  showNotice('source-problem', h && h.source_problem ? `Showing the slate: ${h.source_problem}` : '');
  showNotice('disk-pressure', h && h.disk_pressure ? `Disk: ${h.disk_pressure}` : '');
}

const serviceRows = new Map();

function serviceRow(name) {
  let row = serviceRows.get(name);
  if (row) return row;
  const badge = el('span', { class: 'badge' });
  const detail = el('span', { class: 'muted small detail' });
  const buttons = ['start', 'stop', 'restart'].map((action) => el('button', {
    type: 'button', class: 'small-button', dataset: { action, unit: name }, text: action,
    on: { click: () => act($('service-result'), `${action} ${name}`, `/api/service/${action}`, { unit: name }) },
  }));
  const li = el('li', { class: 'service', dataset: { unit: name } },
    el('div', { class: 'service-name' }, el('strong', { text: name }), badge),
    detail,
    el('div', { class: 'buttons' }, buttons));
  $('service-list').append(li);
  row = { li, badge, detail };
  serviceRows.set(name, row);
  return row;
}

function showServices(status) {
  showNotice('services-unreachable', unreachableText(status, 'systemd', 'systemd (over D-Bus)'));
  const seen = new Set();
  for (const u of status.services || []) {
    seen.add(u.name);
    const row = serviceRow(u.name);
    row.badge.dataset.state = u.active_state;
    setText(row.badge, `${u.active_state} (${u.sub_state})`);
    const parts = [];
    if (u.main_pid) parts.push(`pid ${u.main_pid}`);
    if (u.result && u.result !== 'success') parts.push(`last stop: ${u.result}`);
    if (u.n_restarts) parts.push(`${u.n_restarts} automatic restarts`);
    if (u.start_limit_hit) parts.push('start limit hit');
    setText(row.detail, parts.join(' · '));
  }
  for (const [name, row] of serviceRows) row.li.classList.toggle('stale', !seen.has(name));
}

// ---- Machine: figures and the last hour ------------------------------------------------------

const figures = [
  { key: 'cpu_percent', label: 'CPU' },
  { key: 'memory_percent', label: 'Memory' },
  { key: 'disk_usage_percent', label: 'Disk' },
  { key: 'gpu_memory_percent', label: 'GPU memory' },
];
// Each point's `at` is when it was sampled on the browser's monotonic clock (seconds): a live
// point's is when its status arrived, a point from the server's history is placed by its
// `age_seconds` (monotonic on the server) when the history arrived. So the hour stays
// continuous and in order whatever either wall clock does while the page is open.
let history = { step_seconds: 10, span_seconds: 3600, points: [] };

for (const f of figures) {
  f.value = el('span', { class: 'figure-value', text: '—' });
  f.svg = el('svg:svg', { class: 'spark', role: 'img', 'aria-label': `${f.label}, last hour` });
  f.note = el('span', { class: 'muted small' });
  $('charts').append(el('div', { class: 'chart', dataset: { figure: f.key } },
    el('div', { class: 'chart-head' }, el('span', { text: f.label }), f.value), f.svg, f.note));
}

function gpuPercent(status) {
  const cards = status.gpu || [];
  const total = cards.reduce((n, c) => n + c.total_bytes, 0);
  const used = cards.reduce((n, c) => n + c.used_bytes, 0);
  return total > 0 ? { percent: (used / total) * 100, used, total } : null;
}

function drawCharts() {
  const now = monoNow();
  for (const f of figures) {
    const points = history.points.map((p) => ({ t: p.at, v: p[f.key] }));
    sparkline(f.svg, points, { span: history.span_seconds, now });
  }
}

// Whether the wall clock is synchronised (systemd-timedated), and what it means when not.
function showClock(clock) {
  let state = 'unknown';
  let text = 'unknown';
  let note = clock && clock.error ? `systemd-timedated cannot be asked: ${clock.error}` : '';
  if (clock && clock.synchronized === true) {
    state = 'active';
    text = 'synchronised';
  } else if (clock && clock.synchronized === false) {
    state = 'warning';
    text = 'not synchronised';
    note = 'Times on this page and camera heartbeats recorded now may be off; they are marked in the history.'
      + (clock.ntp_enabled === false ? ' No network time service is enabled (the command timedatectl set-ntp true enables one).' : '');
  }
  const badge = $('clock-sync');
  badge.dataset.state = state;
  setText(badge, text);
  setText($('clock-note'), note);
}

function showMachine(status) {
  showClock(status.clock);
  const sys = status.system;
  showNotice('machine-unreachable', sys ? ''
    : 'The dashboard cannot read this machine\'s CPU, memory and disk use (see its log).');
  const gpu = gpuPercent(status);
  const point = {
    at: lastStatusAt / 1000,
    cpu_percent: sys ? sys.cpu_percent : null,
    memory_percent: sys ? sys.memory_percent : null,
    disk_usage_percent: sys ? sys.disk_usage_percent : null,
    gpu_memory_percent: gpu ? gpu.percent : null,
  };
  for (const f of figures) setText(f.value, formatNumber(point[f.key], '%'));
  const gpuFigure = figures[3];
  setText(gpuFigure.note, gpu ? `${formatBytes(gpu.used)} of ${formatBytes(gpu.total)}`
    : 'not reported: no GPU driver on this machine publishes its memory use');
  const last = history.points[history.points.length - 1];
  if (!last || point.at - last.at >= history.step_seconds) {
    history.points.push(point);
    const oldest = point.at - history.span_seconds;
    while (history.points.length && history.points[0].at < oldest) history.points.shift();
  }
  drawCharts();
}

async function loadHistory() {
  try {
    const h = await getJson('/api/status/history');
    const received = monoNow();
    const points = h.points.map((p) => ({ ...p, at: received - p.age_seconds }));
    // Live points taken while this was on its way stay, one per step after the served ones.
    let newest = points.length ? points[points.length - 1].at : -Infinity;
    for (const p of history.points) {
      if (p.at - newest >= h.step_seconds) {
        points.push(p);
        newest = p.at;
      }
    }
    history = { ...h, points };
    drawCharts();
  } catch (e) {
    setText(figures[0].note, `no history: ${e.message}`);
  }
}

// ---- Health and alerts -----------------------------------------------------------------------

function showHealth(status) {
  const h = status.health;
  showNotice('health-unreachable', unreachableText(status, 'streamer', "The streamer's health"));
  const verdict = $('health-verdict');
  verdict.dataset.state = h ? h.health : 'unreachable';
  setText(verdict, h ? h.health : 'unreachable');
  setText($('uptime'), h ? formatDuration(h.uptime_minutes * 60) : '—');
  setText($('errors'), h ? `${h.total_errors} in all, ${h.recent_errors} recently` : '—');
  setText($('restarts'), h ? String(h.restart_count) : '—');
  setText($('streamer-memory'), h ? formatNumber(h.memory_usage_mb, 'MB') : '—');
  showNotice('last-error', h && h.last_error ? `Last error: ${h.last_error}` : '');
  const restarts = h ? [...h.recent_restarts].reverse() : [];
  const list = $('restart-list');
  const key = JSON.stringify(restarts);
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    setChildren(list, restarts.length
      ? restarts.map((r) => el('li', {},
        el('time', { datetime: r.at, text: formatTime(r.at) }), ' ',
        el('span', { class: 'tag', text: r.reason }), ' ', r.detail))
      : el('li', { class: 'muted', text: h ? 'none since the streamer started' : '—' }));
  }
}

function delivery(d) {
  let text = `${d.channel}: ${d.status}`;
  if (d.status === 'pending' && d.attempts) text += ` (attempt ${d.attempts}${d.last_error ? `, ${d.last_error}` : ''})`;
  if ((d.status === 'failed' || d.status === 'expired') && d.reason) text += ` (${d.reason})`;
  return el('span', { class: `delivery ${d.status}`, text });
}

async function loadAlerts() {
  const list = $('alert-list');
  try {
    const { entries } = await getJson('/api/alerts');
    showNotice('alerts-unreachable', '');
    const recent = (entries || []).slice(-10).reverse();
    setChildren(list, recent.length
      ? recent.map(({ alert, deliveries, not_sent: notSent, repeats }) => el('li', { class: 'alert' },
        el('div', {},
          el('span', { class: 'badge', dataset: { state: alert.severity }, text: alert.severity }), ' ',
          el('strong', { text: alert.title })),
        el('div', { class: 'muted small' },
          el('time', { datetime: alert.raised_at, text: formatTime(alert.raised_at) }),
          alert.action ? ` · ${alert.action}` : '',
          repeats ? ` · came again ${repeats}× within its cooldown, not sent again` : ''),
        notSent ? el('div', { class: 'muted small not-sent', text: `Not sent: ${notSent}` }) : null,
        el('div', { class: 'deliveries' }, (deliveries || []).map(delivery))))
      : el('li', { class: 'muted', text: 'no alerts' }));
  } catch (e) {
    showNotice('alerts-unreachable', `The alert history cannot be read: ${e.message}`);
  }
}

// ---- The live status feed --------------------------------------------------------------------

function onStatus(status) {
  lastStatusAt = performance.now();
  lastStatus = status;
  noteStreamerUptime(status);
  for (const show of [showStream, showServices, showMachine, showHealth]) {
    try {
      show(status);
    } catch (e) {
      console.error(e);
    }
  }
  showFreshness();
}

/** Whether reading needs a login (the feed cannot tell a 401 from a lost connection). */
async function needsLogin() {
  try {
    await getJson('/api/status');
    return false;
  } catch (e) {
    return e.status === 401;
  }
}

new EventFeed('/api/events', { status: onStatus }, async (state) => {
  feedState = state === 'lost' && (await needsLogin()) ? 'login' : state;
  showFreshness();
}).open();

loadHistory();
loadAlerts();
// Logged in on a private dashboard: what could not be read before can be now (the feeds
// reconnect by themselves).
session.subscribe((s) => {
  if (s.loggedIn && feedState === 'login') {
    loadHistory();
    loadAlerts();
  }
});
setInterval(loadAlerts, ALERTS_INTERVAL_MS);

// ---- Player ----------------------------------------------------------------------------------

// WebRTC by default (a fraction of a second behind the screen), HLS when WebRTC cannot connect
// here; `?player=webrtc`, `?player=hls` (or `native`, `hlsjs`) force one. The caption under the
// video says which one plays, how far behind the screen it is, and what happened when the
// picture pauses (the stream's state from the status feed).
const playerChoice = new URLSearchParams(location.search).get('player');
/** How long after a restart the caption still names it. */
const RESTART_STORY_S = 30;
/** How often the HLS latency estimate is refreshed. */
const HLS_LATENCY_MS = 2000;
let playerNote = '';

/** What the page knows of why the picture paused or came back: the stream's state and its
 * latest restart, from the status feed; '' when nothing is known. */
function streamStory() {
  if (!lastStatus) return '';
  const h = lastStatus.health;
  if (!h) return unreachableText(lastStatus, 'streamer', 'the streamer') || 'the streamer does not answer';
  if (h.current_state === 'slate') return `the stream shows the slate${h.source_problem ? `: ${h.source_problem}` : ''}`;
  if (h.current_state !== 'streaming') return `the stream is ${h.current_state}`;
  const r = (h.recent_restarts || [])[0];
  // Streaming for a short while only (a monotonic figure of the streamer's): it restarted
  // (the newest restart comes first).
  if (r && h.state_for_seconds < RESTART_STORY_S) {
    return `the stream restarted: ${r.reason.replaceAll('_', ' ')}${r.detail ? ` (${r.detail})` : ''}`;
  }
  return '';
}

/** When (performance.now()) the page saw the streamer process start afresh: its uptime went
 * back. A WebRTC session opened before then is gone with the old process. */
let streamerRestartedAt = -Infinity;
let streamerUptime = null;
function noteStreamerUptime(status) {
  const up = status.health ? status.health.uptime_minutes : null;
  if (typeof up !== 'number') return;
  if (streamerUptime !== null && up < streamerUptime) streamerRestartedAt = performance.now();
  streamerUptime = up;
}
function sessionGone(openedAt) {
  return streamerRestartedAt > openedAt ? 'the streamer process restarted' : '';
}

let playerText = '';
let latencyText = '';
function showPlayer(isError) {
  const caption = $('player-state');
  caption.classList.toggle('error', isError);
  const parts = [playerText, latencyText, playerNote].filter(Boolean);
  setText(caption, parts.join(' · '));
}
function showPlayerState(text, isError) {
  playerText = text;
  showPlayer(isError);
}

/** HLS: how far the picture is behind the newest segment the player knows of (hls.js's own
 * `latency`; the end of what it can seek or holds for the browser's own). The segment being made is not
 * counted, so the picture is a segment or so further behind the screen than this. */
function watchHlsLatency(player) {
  setInterval(() => {
    const v = $('video');
    let behind = null;
    if (player.hls && Number.isFinite(player.hls.latency)) behind = player.hls.latency;
    else if (player.mode === 'native') {
      // The browser's own HLS loads every segment listed, so what it holds ends at the live
      // edge (Chromium gives a live stream no seekable range).
      const known = v.seekable.length ? v.seekable : v.buffered;
      if (known.length) behind = known.end(known.length - 1) - v.currentTime;
    }
    latencyText = behind === null || v.paused || !(behind >= 0) ? '' : `about ${behind.toFixed(1)} s behind the live edge`;
    v.dataset.latency = behind === null ? '' : String(behind);
    if (!$('player-state').classList.contains('error')) showPlayer(false);
  }, HLS_LATENCY_MS);
}
function playHls() {
  const player = new Player($('video'), HLS_URL, showPlayerState, { lowLatencyUrl: LL_HLS_URL });
  player.start();
  watchHlsLatency(player);
}
if ((playerChoice === null || playerChoice === 'webrtc') && 'RTCPeerConnection' in window) {
  const onGiveUp = playerChoice === 'webrtc' ? null : (why) => {
    playerNote = `HLS, as WebRTC could not connect: ${why}`;
    $('video').dataset.fellBack = why;
    playHls();
  };
  const rtc = new WhepPlayer($('video'), {
    onState: showPlayerState, onGiveUp, story: streamStory, gone: sessionGone,
  });
  rtc.watchStats();
  rtc.start();
} else {
  playHls();
}

// ---- Tools -----------------------------------------------------------------------------------

$('restart-stream').addEventListener('click', () =>
  act($('tool-result'), 'Restart the stream', '/api/stream/restart'));
$('cleanup').addEventListener('click', () => act($('tool-result'), 'Clean up segments', '/api/stream/cleanup'));

// ---- Logs ------------------------------------------------------------------------------------

let logFeed = null;

function logLine(line) {
  const fields = Object.entries(line.fields || {})
    .filter(([k]) => k !== 'span')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return el('li', { class: `log level-${line.level}`, dataset: { service: line.service, level: line.level } },
    el('time', { datetime: line.timestamp || '', text: line.timestamp ? new Date(line.timestamp).toLocaleTimeString() : '' }),
    el('span', { class: 'log-service', text: line.service.replace(/^desktop-streamer-?/, '') || 'streamer' }),
    el('span', { class: 'log-level', text: line.level }),
    el('span', { class: 'log-message', text: line.message }),
    fields ? el('span', { class: 'log-fields', text: fields }) : null);
}

function appendLog(line) {
  const list = $('log-lines');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(logLine(line));
  while (list.childElementCount > MAX_LOG_LINES) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function openLogs() {
  if (logFeed) logFeed.close();
  const params = new URLSearchParams({ lines: String(INITIAL_LOG_LINES) });
  for (const [id, name] of [['log-level', 'level'], ['log-service', 'service'], ['log-text', 'q']]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  logFeed = new EventFeed(`/api/logs/stream?${params}`, { log: appendLog }, async (state) => {
    if (state === 'open') {
      // The server sends the last lines again on every (re)connection.
      setChildren($('log-lines'));
      showNotice('logs-unreachable', '');
      setText($('logs-state'), 'live');
    } else if (state === 'lost') {
      setText($('logs-state'), 'reconnecting…');
      let why = 'the log stream was lost, retrying…';
      // The same filter asking for no lines: its answer is the stream's error, if any.
      const probe = new URLSearchParams(params);
      probe.set('lines', '0');
      try {
        await getJson(`/api/logs?${probe}`);
      } catch (e) {
        why = `The logs cannot be read: ${e.message}`;
      }
      showNotice('logs-unreachable', why);
    }
  }).open();
}

let filterTimer = null;
$('log-filter').addEventListener('submit', (e) => e.preventDefault());
$('log-level').addEventListener('change', openLogs);
$('log-service').addEventListener('change', openLogs);
$('log-text').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(openLogs, 300);
});
openLogs();
