// The cameras page: the grid (state, reason, latency, last frame, codec and resolution,
// uptime, heartbeat bar), a camera's history, state changes and preview, and the editor.
// Live: every heartbeat arrives over /api/cameras/events (a camera the page does not know
// yet, added by hand or by another user, makes it fetch the list again); the grid's uptime
// figures are fetched again every minute; an open camera's state changes and chart follow its
// state; "x s ago" keeps counting between heartbeats. Names and messages are inserted as
// text, never as HTML.

import {
  el, setChildren, setText, getJson, postJson, putJson, deleteJson, EventFeed, session, mountHeader,
  formatDuration, report,
} from './common.js';

const REFRESH_MS = 60_000;
const CHANGES_PAGE = 20;
/** How often relative times ("12 s ago") are brought up to date. */
const TICK_MS = 1000;
/** The service commits heartbeats in batches at most a second old: an open camera's history
 * is asked for again this long after its state changed, so the change is in it. */
const STORED_AFTER_MS = 2000;
/** Heartbeats of unknown cameras within this time cause one fetch of the list. */
const UNKNOWN_REFRESH_MS = 1000;

const state = {
  list: null, // the last /api/cameras answer
  byId: new Map(), // id -> camera object (live parts updated by events)
  cards: new Map(), // id -> card element parts
  selected: null,
  changesBefore: null,
  timezone: 'UTC',
  lastUpdate: 0,
  historyTimer: null,
  refreshTimer: null,
  needsLogin: false, // reading is private (public_read off) and nobody is logged in
};

const $ = (id) => document.getElementById(id);

/** A time in the list's time zone. */
function localTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  try {
    return new Intl.DateTimeFormat(undefined, {
      timeZone: state.timezone, dateStyle: 'short', timeStyle: 'medium',
    }).format(d);
  } catch {
    return d.toLocaleString();
  }
}

/** How far a time may be ahead of this browser's clock and still read "just now" (the
 * service's clock and the browser's never agree to the millisecond). */
const CLOCK_TOLERANCE_S = 5;

/** "12 s ago"; never a negative age: a time ahead of this browser's clock (the service's or
 * the browser's clock stepped, or the history was stored ahead of a clock set back) says so. */
function ago(iso) {
  if (!iso) return '—';
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(s)) return '—';
  if (s < -CLOCK_TOLERANCE_S) return `${formatDuration(-s)} ahead of this browser's clock (a clock has stepped)`;
  return agoSeconds(s);
}

function agoSeconds(s) {
  if (s < CLOCK_TOLERANCE_S / 5) return 'just now';
  return `${formatDuration(s)} ago`;
}

/** "12 s ago", kept current by the ticker. */
const liveAgo = (iso) => el('span', { class: 'ago', dataset: { at: iso }, text: ago(iso) });

/** When the camera's newest frame arrived, on this browser's monotonic clock: the age the
 * service measured on its own monotonic clock, counted on from when the page received it. No
 * wall clock is involved, so a step of either clock cannot make it wrong. */
const frameMoment = (cam) => cam.receivedAt - cam.last_frame_age_seconds * 1000;

/** "12 s ago" for a moment on the monotonic clock, kept current by the ticker. */
const liveAge = (moment) => el('span', {
  class: 'ago', dataset: { moment: String(moment) }, text: agoSeconds((performance.now() - moment) / 1000),
});

function tick() {
  for (const node of document.querySelectorAll('.ago[data-at]')) setText(node, ago(node.dataset.at));
  for (const node of document.querySelectorAll('.ago[data-moment]')) {
    setText(node, agoSeconds((performance.now() - Number(node.dataset.moment)) / 1000));
  }
}

const percent = (v) => (typeof v === 'number' ? `${v.toFixed(v >= 99.95 || v < 10 ? 1 : 2)} %` : '—');

function stateText(cam) {
  if (!cam.state) return 'waiting';
  return cam.reason ? `${cam.state} · ${cam.reason}` : cam.state;
}

function facts(cam) {
  const size = cam.width && cam.height ? `${cam.width}×${cam.height}` : '—';
  return [
    ['State since', cam.since ? [`${localTime(cam.since)} (`, liveAgo(cam.since), ')'] : '—'],
    ['Why', cam.message || (cam.state === 'UP' ? 'video arrives' : '—')],
    ['Latency to first frame', typeof cam.latency_ms === 'number' ? `${cam.latency_ms} ms` : '—'],
    ['Last frame', typeof cam.last_frame_age_seconds === 'number' ? liveAge(frameMoment(cam))
      : cam.last_frame_at ? liveAgo(cam.last_frame_at) : 'never'],
    ['Codec, size', `${cam.codec || '—'}, ${size}`],
    ...(typeof cam.packets_lost === 'number' ? [['RTP packets lost (last probe)', String(cam.packets_lost)]] : []),
    ['Uptime 24 h · 7 d · 30 d', ['24h', '7d', '30d'].map((w) => percent(cam.uptime && cam.uptime[w])).join(' · ')],
    ['Heartbeat', `every ${cam.heartbeat_seconds} s`],
    ...(isHttps(cam) ? [['TLS certificate', cam.verify_tls ? 'verified' : 'accepted unverified (verify_tls off)']] : []),
  ];
}

const isHttps = (cam) => /^https:/i.test(cam.url || '');

/** The list's own verify_tls: what a camera without an override gets. */
const listVerifiesTls = () => state.list?.verify_tls !== false;

function factList(pairs) {
  return pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]);
}

function bar(buckets) {
  return el('div', { class: 'hb-bar', 'aria-hidden': 'true' },
    (buckets || []).map((b) => el('span', { class: b.worst || 'none', title: b.worst || 'no data' })));
}

/** When the camera's newest thumbnail was taken; none without one. The list says so for every
 * camera, also one without a heartbeat since the service restarted (its picture was kept on
 * disk); a heartbeat that brought a new picture says so on the event feed. */
const thumbAt = (cam) => (cam.thumbnail && cam.thumbnail.taken_at) || null;

/** The thumbnail's address: a new one with every new picture. */
const thumbUrl = (cam) =>
  `/api/cameras/${encodeURIComponent(cam.id)}/thumbnail.jpg?at=${encodeURIComponent(thumbAt(cam))}`;

/** The picture on top of a card: the thumbnail, or a word where there is none yet. */
function thumbnail(cam) {
  const none = el('span', { class: 'thumb-none muted', text: 'no picture yet' });
  const img = el('img', { class: 'thumb', alt: `Picture from ${cam.name}`, hidden: true });
  img.addEventListener('load', () => { img.hidden = false; none.hidden = true; });
  img.addEventListener('error', () => { img.hidden = true; none.hidden = false; });
  if (thumbAt(cam)) img.src = thumbUrl(cam);
  return { frame: el('div', { class: 'thumb-frame' }, img, none), img, at: thumbAt(cam) };
}

/** The card's verdict: the state, and under it why it is not UP. */
function verdict(cam) {
  const badge = el('span', { class: 'badge', dataset: { state: cam.state || 'unknown' }, text: cam.state || 'waiting' });
  const reason = el('span', { class: 'reason', text: cam.reason || '', hidden: !cam.reason });
  return { node: el('div', { class: 'verdict' }, badge, reason), badge, reason };
}

function showVerdict(v, cam) {
  v.badge.dataset.state = cam.state || 'unknown';
  setText(v.badge, cam.state || 'waiting');
  setText(v.reason, cam.reason || '');
  v.reason.hidden = !cam.reason;
}

function card(cam) {
  const v = verdict(cam);
  const link = el('a', { href: `#${encodeURIComponent(cam.id)}`, text: cam.name });
  const dl = el('dl', { class: 'facts' }, factList(facts(cam).slice(1, 6)));
  const buttons = el('div', { class: 'buttons needs-login' },
    el('button', { type: 'button', class: 'small-button', text: 'Edit', on: { click: () => startEdit(cam.id) } }),
    el('button', { type: 'button', class: 'small-button', text: 'Delete', on: { click: () => remove(cam.id) } }));
  const thumb = thumbnail(cam);
  // As a camera wall: the picture on top, the name, the state and the reason under it. The
  // newest heartbeat's time, as the service's clock said it, is on the card (for tests and tools).
  const node = el('li', { class: 'camera-card', dataset: { id: cam.id, heartbeatAt: cam.last_heartbeat_at || '' } },
    thumb.frame,
    el('h3', {}, link),
    v.node,
    el('div', { class: 'url muted', text: cam.url, title: cam.url }),
    dl, bar(cam.bar), buttons);
  return { node, verdict: v, dl, thumb };
}

/** "3 UP, 1 DOWN" over the cameras as they are now. */
function renderCounts() {
  const counts = {};
  for (const c of state.list.cameras) counts[c.state || 'waiting'] = (counts[c.state || 'waiting'] || 0) + 1;
  setText($('fleet-counts'), Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ') || 'no cameras');
}

function renderGrid() {
  const list = state.list;
  if (!list) return;
  state.timezone = list.timezone || 'UTC';
  renderCounts();
  const problem = list.file_problem;
  $('file-problem').hidden = !problem;
  if (problem) {
    setChildren($('file-problem'),
      el('p', { text: 'The camera list on disk was refused; the previous list keeps running:' }),
      el('ul', {}, problem.messages.map((m) => el('li', { text: m }))));
  }
  $('history-problem').hidden = !list.history_problem;
  setText($('history-problem'), list.history_problem || '');
  const behind = list.thumbnails_behind;
  $('thumbnails-behind').hidden = !behind;
  setText($('thumbnails-behind'), behind
    ? `thumbnails refresh about every ${behind.refresh_seconds} s: decoding every heartbeat's picture of ${behind.cameras} cameras needs more than the ${behind.picture_cpu_percent} % of a core it may use (picture_cpu_percent in the camera list; camera states are not delayed)`
    : '');
  state.cards.clear();
  const nodes = list.cameras.map((cam) => {
    const c = card(cam);
    state.cards.set(cam.id, c);
    return c.node;
  });
  setChildren($('camera-grid'), nodes.length ? nodes : [el('li', { class: 'muted', text: 'No cameras yet. Log in and add one below.' })]);
  // The list's settings as the file has them, unless someone is changing them right now.
  if (!$('settings-form').contains(document.activeElement)) {
    $('settings-heartbeat').value = list.heartbeat_seconds;
    $('settings-timezone').value = list.timezone;
    $('settings-verify-tls').checked = list.verify_tls !== false;
  }
}

/** A heartbeat from the event feed: update that camera's card and the detail panel. */
function onHeartbeat(live) {
  const cam = state.byId.get(live.id);
  if (!cam) {
    // Added since the list was fetched (by hand in the file, or from another page).
    if (!state.refreshTimer) {
      state.refreshTimer = setTimeout(() => { state.refreshTimer = null; refresh(); }, UNKNOWN_REFRESH_MS);
    }
    return;
  }
  const before = cam.state;
  // A heartbeat without a frame age (none since the service started) must not leave an older one.
  delete cam.last_frame_age_seconds;
  Object.assign(cam, live, { receivedAt: performance.now() });
  const c = state.cards.get(live.id);
  if (c) {
    c.node.dataset.heartbeatAt = cam.last_heartbeat_at || '';
    showVerdict(c.verdict, cam);
    setChildren(c.dl, factList(facts(cam).slice(1, 6)));
    // A heartbeat that brought a new picture.
    if (thumbAt(cam) && c.thumb.at !== thumbAt(cam)) {
      c.thumb.at = thumbAt(cam);
      c.thumb.img.src = thumbUrl(cam);
    }
  }
  renderCounts();
  if (state.selected === live.id) {
    renderDetail(cam);
    if (cam.state !== before) {
      clearTimeout(state.historyTimer);
      state.historyTimer = setTimeout(() => {
        if (state.selected !== live.id) return;
        loadOne(live.id);
        loadHistory(live.id);
        loadChanges(live.id);
      }, STORED_AFTER_MS);
    }
  }
  markFresh();
}

function markFresh() {
  state.lastUpdate = Date.now();
  $('fleet').classList.remove('stale');
}

// Refreshes overlap (the live feed asks for one while a change asks for another): the answer
// to the latest request wins, so an older, slower one cannot bring back what a change replaced.
let refreshesAsked = 0;
let refreshShown = 0;

async function refresh() {
  const asked = ++refreshesAsked;
  try {
    const list = await getJson('/api/cameras');
    const receivedAt = performance.now();
    for (const cam of list.cameras) cam.receivedAt = receivedAt;
    if (asked < refreshShown) return;
    refreshShown = asked;
    state.list = list;
    state.byId = new Map(list.cameras.map((c) => [c.id, c]));
    state.needsLogin = false;
    $('fleet-unreachable').hidden = true;
    renderGrid();
    markFresh();
    if (state.selected) {
      const cam = state.byId.get(state.selected);
      if (cam) renderDetail(cam); else closeDetail();
    }
  } catch (e) {
    if (asked < refreshShown) return;
    state.needsLogin = e.status === 401;
    $('fleet-unreachable').hidden = false;
    setText($('fleet-unreachable'), state.needsLogin
      ? 'This page is private (public_read is off): log in above to see the cameras.'
      : `The camera monitor cannot be reached: ${e.message}. The figures below may be old.`);
    $('fleet').classList.add('stale');
    if (state.needsLogin) $('connection').hidden = true;
  }
}

function renderDetail(cam) {
  setText($('camera-title'), cam.name);
  const badge = $('camera-state');
  badge.dataset.state = cam.state || 'unknown';
  setText(badge, stateText(cam));
  setChildren($('camera-facts'), factList([['URL', cam.url], ...facts(cam)]));
  $('export-one').href = `/api/cameras/export.csv?camera=${encodeURIComponent(cam.id)}`;
}

/** The camera's uptime and bar as the API has them now (the list's may be a minute old). */
async function loadOne(id) {
  try {
    const one = await getJson(`/api/cameras/${encodeURIComponent(id)}`);
    const cam = state.byId.get(id);
    if (!cam || state.selected !== id) return;
    cam.uptime = one.uptime;
    cam.bar = one.bar;
    renderDetail(cam);
  } catch {
    // The panel keeps the list's figures; the chart and changes say what failed.
  }
}

async function loadHistory(id) {
  const chart = $('history-chart');
  try {
    const h = await getJson(`/api/cameras/${encodeURIComponent(id)}/history?hours=24&buckets=96`);
    // Another camera was opened meanwhile: its own answer draws the chart.
    if (state.selected !== id) return;
    setChildren(chart, h.buckets.map((b) => {
      const t = b.time;
      const total = t.up_ms + t.degraded_ms + t.pending_ms + t.down_ms + t.unknown_ms || 1;
      const col = el('div', { class: 'col', title: `${localTime(b.start)}: ${b.worst || 'no data'}` });
      for (const [key, ms] of [['up', t.up_ms], ['degraded', t.degraded_ms], ['pending', t.pending_ms],
        ['down', t.down_ms], ['unknown', t.unknown_ms]]) {
        if (ms > 0) {
          const part = el('span', { class: key });
          part.style.height = `${(100 * ms) / total}%`;
          col.append(part);
        }
      }
      return col;
    }));
  } catch (e) {
    if (state.selected !== id) return;
    setChildren(chart, el('p', { class: 'unreachable', text: `History unavailable: ${e.message}` }));
  }
}

async function loadChanges(id, more = false) {
  const list = $('change-list');
  const q = new URLSearchParams({ limit: CHANGES_PAGE });
  if (more && state.changesBefore) q.set('before', state.changesBefore);
  try {
    const page = await getJson(`/api/cameras/${encodeURIComponent(id)}/changes?${q}`);
    if (state.selected !== id) return;
    const items = page.changes.map((c) => el('li', {},
      el('time', { datetime: c.at, text: localTime(c.at) }), ' ',
      el('span', { class: 'badge', dataset: { state: c.to }, text: c.to }),
      c.from ? ` from ${c.from}` : ' (first heartbeat)',
      c.reason ? ` · ${c.reason}` : '',
      c.message ? ` · ${c.message}` : ''));
    if (more) list.append(...items);
    else setChildren(list, items.length ? items : [el('li', { class: 'muted', text: 'no changes recorded yet' })]);
    state.changesBefore = page.next_before;
    $('changes-more').hidden = !page.next_before;
  } catch (e) {
    if (state.selected !== id) return;
    setChildren(list, el('li', { class: 'unreachable', text: `State changes unavailable: ${e.message}` }));
  }
}

function openDetail(id) {
  const cam = state.byId.get(id);
  if (!cam) return;
  // Another camera's state changes are not shown under this one's name while its own load.
  if (state.selected !== id) setChildren($('change-list'), []);
  state.selected = id;
  state.changesBefore = null;
  $('camera').hidden = false;
  $('preview').hidden = true;
  setText($('preview-state'), '');
  renderDetail(cam);
  loadOne(id);
  loadHistory(id);
  loadChanges(id);
}

function closeDetail() {
  state.selected = null;
  $('camera').hidden = true;
  if (window.location.hash) window.history.replaceState(null, '', window.location.pathname);
}

/** Shows the camera's picture under its details: grabbed from the camera now when this page
 * is logged in, otherwise its last heartbeat's (the service says which in X-Picture-Source). */
async function showPreview() {
  const id = state.selected;
  if (!id) return;
  const img = $('preview');
  setText($('preview-state'), 'asking for a picture…');
  let text;
  try {
    const r = await fetch(`/api/cameras/${encodeURIComponent(id)}/snapshot.jpg`, { credentials: 'same-origin' });
    // A picture that arrives after another camera was opened is not shown under its name.
    if (state.selected !== id) return;
    if (r.ok) {
      const blob = await r.blob();
      if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
      img.alt = `Picture from ${state.byId.get(id)?.name || 'the camera'}`;
      const shown = await new Promise((resolve) => {
        img.onload = () => resolve(true);
        img.onerror = () => resolve(false);
        img.src = URL.createObjectURL(blob);
      });
      if (state.selected !== id) return;
      if (!shown) {
        img.hidden = true;
        setText($('preview-state'), 'No picture: this browser cannot show the picture the camera sent');
        return;
      }
      img.hidden = false;
      const size = `${img.naturalWidth}×${img.naturalHeight}`;
      const at = localTime(r.headers.get('x-taken-at'));
      text = r.headers.get('x-picture-source') === 'grab'
        ? `${size}, grabbed from the camera at ${at}`
        : `${size}, from the last heartbeat at ${at} (log in for a full-size picture grabbed now)`;
    } else {
      img.hidden = true;
      const body = await r.json().catch(() => ({}));
      text = `No picture: ${body.error || `HTTP ${r.status}`}`;
    }
  } catch {
    if (state.selected !== id) return;
    img.hidden = true;
    text = 'No picture: the dashboard did not answer';
  }
  setText($('preview-state'), text);
}

// ---- the editor ----

/** The editor's number fields of a camera's own probe settings: field id → API key. Empty
 * means the list's setting (null clears the camera's own). */
const OVERRIDES = {
  'form-heartbeat': 'heartbeat_seconds',
  'form-frozen': 'frozen_seconds',
  'form-black': 'black_seconds',
  'form-packets': 'max_packets_lost',
};
/** Where the list API shows a camera's own value of each key. */
const OVERRIDE_OF = {
  heartbeat_seconds: 'heartbeat_override',
  frozen_seconds: 'frozen_override',
  black_seconds: 'black_override',
  max_packets_lost: 'max_packets_lost_override',
};

function resetForm() {
  $('camera-form').reset();
  $('form-verify-tls').checked = listVerifiesTls();
  $('form-id').value = '';
  setText($('form-submit'), 'Add camera');
  $('form-cancel').hidden = true;
}

function startEdit(id) {
  const cam = state.byId.get(id);
  if (!cam) return;
  $('form-id').value = id;
  $('form-name').value = cam.name;
  $('form-url').value = cam.url;
  for (const [field, key] of Object.entries(OVERRIDES)) $(field).value = cam[OVERRIDE_OF[key]] ?? '';
  $('form-verify-tls').checked = cam.verify_tls !== false;
  setText($('form-submit'), 'Save camera');
  $('form-cancel').hidden = false;
  $('form-name').focus();
}

/** A change through the editor. "done" is said once the page shows the list as it is now (a
 * camera opened right after a new time zone was saved shows its times in that zone). */
async function change(out, what, call) {
  return report(out, what, async () => {
    const answer = await call();
    await refresh();
    return answer;
  });
}

async function submitCamera(event) {
  event.preventDefault();
  const id = $('form-id').value;
  const verify = $('form-verify-tls').checked;
  const body = {
    name: $('form-name').value,
    url: $('form-url').value,
    // The list's setting needs no override; only a difference from it is written down.
    verify_tls: verify === listVerifiesTls() ? null : verify,
  };
  for (const [field, key] of Object.entries(OVERRIDES)) {
    const v = $(field).value.trim();
    body[key] = v === '' ? null : Number(v);
  }
  const ok = id
    ? await change($('form-result'), `Saving ${body.name}`, () => putJson(`/api/cameras/${encodeURIComponent(id)}`, body))
    : await change($('form-result'), `Adding ${body.name}`, () => postJson('/api/cameras', body));
  if (ok) resetForm();
}

async function remove(id) {
  const cam = state.byId.get(id);
  if (!cam || !window.confirm(`Delete the camera “${cam.name}”? Its history stays in the database.`)) return;
  await change($('form-result'), `Deleting ${cam.name}`, () => deleteJson(`/api/cameras/${encodeURIComponent(id)}`));
  if (state.selected === id) closeDetail();
}

async function submitSettings(event) {
  event.preventDefault();
  const verify = $('settings-verify-tls').checked;
  const body = {
    heartbeat_seconds: Number($('settings-heartbeat').value),
    timezone: $('settings-timezone').value,
    // Sent only when changed, so a file without it stays without it. Ticked again, it is
    // cleared (null): the key leaves the file and the default, verify, applies.
    verify_tls: verify === listVerifiesTls() ? undefined : (verify ? null : false),
  };
  await change($('settings-result'), 'Saving the settings', () => putJson('/api/cameras/settings', body));
}

function onHash() {
  const id = decodeURIComponent(window.location.hash.slice(1));
  if (!id) return;
  openDetail(id);
  // The panel is below the grid: bring it into view (on a phone it is screens away).
  if (state.selected === id) $('camera').scrollIntoView({ block: 'start' });
}

function connectionState(s) {
  const banner = $('connection');
  // A private page's feed is refused too: the login message above says why.
  banner.hidden = s !== 'lost' || state.needsLogin;
  setText(banner, s === 'lost' ? 'Live updates lost; retrying. Figures may be old.' : '');
  if (s === 'lost') $('fleet').classList.add('stale');
  if (s === 'open') refresh();
}

async function main() {
  mountHeader('/cameras');
  $('camera-form').addEventListener('submit', submitCamera);
  $('form-cancel').addEventListener('click', resetForm);
  $('settings-form').addEventListener('submit', submitSettings);
  $('camera-close').addEventListener('click', closeDetail);
  $('preview-button').addEventListener('click', showPreview);
  $('changes-more').addEventListener('click', () => state.selected && loadChanges(state.selected, true));
  window.addEventListener('hashchange', onHash);
  await refresh();
  onHash();
  new EventFeed('/api/cameras/events', { camera: onHeartbeat }, connectionState).open();
  // Logged in on a private dashboard: the list can be read now (the feed reconnects itself).
  session.subscribe((s) => { if (s.loggedIn && state.needsLogin) refresh(); });
  setInterval(refresh, REFRESH_MS);
  setInterval(tick, TICK_MS);
}

main();
