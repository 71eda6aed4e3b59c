// Drives the cameras page (/cameras) of a running desktop-streamer-web in headless Chromium
// (Debian's /usr/bin/chromium): every camera in the grid, hostile names shown as text (no
// element, no dialog, nothing the Content-Security-Policy had to refuse), states arriving
// over the event feed without a reload (a camera going DOWN and coming back), a camera's
// history, state changes and preview, the editor (a refused URL, add, rename keeping the
// hidden password, a camera's own probe limits, delete), the list's settings (time zone, verify_tls), the
// phone layout, the dashboard's link to the page, and a camera
// added to the file by hand appearing without a reload.
//
// Usage: node cameras.mjs SPEC_JSON
//   SPEC_JSON: {base, password, secrets: [..], cameras: {hostile, quoted, switchable, missing:
//   {id, name, size?}}, added: {name, url, renamed}, bad_url, hand_added: {name}}
// Asks the test (a JSON line on stdout, the answer a JSON line on stdin):
//   {"ask": "mjpeg_mode", "mode": "not_found" | "live"}   what the Gate camera's server sends
//   {"ask": "file_has_url", "url": URL}                    whether cameras.yaml holds URL
//   {"ask": "file_has_line", "line": L}                    whether cameras.yaml has the line L
//   {"ask": "file_has_key", "key": K}                      whether cameras.yaml has a top-level key K
//   {"ask": "hand_edit"}              cameras.yaml rewritten by hand with spec.hand_added too
// Prints one JSON line {"ok", "checks": {name: {ok, ...}}} last; exit 0 when every check passed.
// The checks run in order and later ones rely on earlier ones (logged in, the camera added).
import { join } from 'node:path';
import { check, checks } from './checks.mjs';
import { launch } from './chromium.mjs';
import { ask } from './ask.mjs';

const spec = JSON.parse(process.argv[2] || 'null');
if (!spec || !spec.base) {
  console.error('usage: node cameras.mjs SPEC_JSON');
  process.exit(2);
}
const { base, cameras: cams } = spec;
/** A state arrives within one heartbeat (5 s) plus the probe timeout, twice for DOWN. */
const STATE_TIMEOUT = 20000;
const STEP_TIMEOUT = 10000;

// ---- the browser ----
const browser = await launch({ viewport: { width: 1280, height: 900 } });
const { context } = browser;
context.setDefaultTimeout(STEP_TIMEOUT);

// Runs before every page's own scripts: counts the page's API calls (to tell live updates
// from reloads of the list), records Content-Security-Policy violations, and every element a
// name could have smuggled in (img, b, script, iframe, anything with an on* attribute) from
// the moment the document exists.
await context.addInitScript(() => {
  const probe = { loadId: Math.random().toString(36).slice(2), fetches: {}, csp: [], injected: [] };
  window.__probe = probe;
  const realFetch = window.fetch;
  window.fetch = function countedFetch(input, init) {
    const url = new URL(typeof input === 'string' ? input : input.url, window.location.href);
    const key = `${(init && init.method) || 'GET'} ${url.pathname}`;
    probe.fetches[key] = (probe.fetches[key] || 0) + 1;
    return realFetch.call(this, input, init);
  };
  document.addEventListener('securitypolicyviolation', (e) => {
    probe.csp.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
  });
  const suspicious = (node) => {
    const tag = node.tagName;
    const handler = [...node.attributes].find((a) => a.name.toLowerCase().startsWith('on'));
    if (handler) return `<${tag.toLowerCase()} ${handler.name}=…>`;
    // The page's own pictures: the preview, and the cards' thumbnails from the API.
    const ours = node.id === 'preview'
      || (node.classList.contains('thumb') && (node.getAttribute('src') ?? '/api/cameras/').startsWith('/api/cameras/'));
    if (tag === 'IMG' && !ours) return `<img src=${node.getAttribute('src')}>`;
    if (tag === 'B' || tag === 'IFRAME' || tag === 'OBJECT' || tag === 'EMBED') return `<${tag.toLowerCase()}>`;
    if (tag === 'SCRIPT' && !(node.getAttribute('src') || '').startsWith('/assets/')) return '<script> without our src';
    return null;
  };
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (n.nodeType !== Node.ELEMENT_NODE) continue;
        for (const e of [n, ...n.querySelectorAll('*')]) {
          const what = suspicious(e);
          if (what) probe.injected.push(what);
        }
      }
    }
  }).observe(document, { childList: true, subtree: true });
});

const consoleErrors = [];
const dialogs = [];
const statuses = [];
const pages = [];
/** The confirm the next delete raises; any other dialog is an injected script's. */
let expectConfirm = null;


function fail(message, detail) {
  throw new Error(detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`);
}

async function open(path, viewport) {
  const page = await context.newPage();
  pages.push(page);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push({ page: path, text: m.text(), url: m.location().url });
  });
  page.on('pageerror', (e) => consoleErrors.push({ page: path, text: `uncaught: ${e.message}` }));
  page.on('dialog', async (d) => {
    dialogs.push({ page: path, type: d.type(), message: d.message(), expected: Boolean(expectConfirm) });
    if (expectConfirm && d.type() === 'confirm') {
      expectConfirm = null;
      await d.accept();
    } else {
      await d.dismiss();
    }
  });
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/') && r.request().method() !== 'GET') {
      statuses.push({ method: r.request().method(), path: u.pathname, status: r.status() });
    }
  });
  if (viewport) await page.setViewportSize(viewport);
  await page.goto(base + path);
  return page;
}

/** With DS_SCREENSHOT_DIR set, full-page screenshots go there (for looking at the layout). */
async function screenshot(page, name) {
  if (process.env.DS_SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.DS_SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** Every card in the grid: id, the name's text, the badge, the URL line, the facts. */
const cards = (page) => page.evaluate(() => [...document.querySelectorAll('#camera-grid li.camera-card')].map((li) => ({
  id: li.dataset.id,
  name: li.querySelector('h3 a').textContent,
  nameElements: li.querySelector('h3 a').childElementCount,
  state: li.querySelector('.badge').dataset.state,
  badge: li.querySelector('.badge').textContent,
  url: li.querySelector('.url').textContent,
  facts: li.querySelector('.facts').textContent,
})));

/** Waits until the card of `id` shows `state` (and `reason` under it, when given). */
function waitForState(page, id, state, reason, timeout = STATE_TIMEOUT) {
  return page.waitForFunction(([i, s, r]) => {
    const li = document.querySelector(`#camera-grid li[data-id="${CSS.escape(i)}"]`);
    const badge = li && li.querySelector('.badge');
    const why = li && li.querySelector('.verdict .reason');
    return badge && badge.dataset.state === s && (!r || (why && !why.hidden && why.textContent === r));
  }, [id, state, reason], { timeout });
}

const card = (id) => `#camera-grid li[data-id="${id}"]`;

try {
  const page = await open('/cameras');
  const loadId = await page.evaluate(() => window.__probe.loadId);

  await check('grid_lists_every_camera', async () => {
    await page.waitForFunction((n) => document.querySelectorAll('#camera-grid li.camera-card').length === n,
      Object.keys(cams).length);
    const shown = await cards(page);
    for (const c of Object.values(cams)) {
      const s = shown.find((x) => x.id === c.id);
      if (!s) fail(`${c.id} is not in the grid`, shown);
      if (s.name !== c.name) fail(`${c.id} is named ${JSON.stringify(s.name)}, not ${JSON.stringify(c.name)}`);
    }
    return { cards: shown.map((c) => ({ id: c.id, name: c.name, badge: c.badge })) };
  });

  await check('names_are_text', async () => {
    const r = await page.evaluate(([hostile, quoted]) => {
      const link = (id) => document.querySelector(`#camera-grid li[data-id="${CSS.escape(id)}"] h3 a`);
      return {
        hostile: { text: link(hostile.id).textContent, elements: link(hostile.id).childElementCount },
        quoted: { text: link(quoted.id).textContent, elements: link(quoted.id).childElementCount },
        images: [...document.querySelectorAll('img:not(#preview)')]
          .filter((i) => !(i.classList.contains('thumb') && (i.getAttribute('src') ?? '/api/cameras/').startsWith('/api/cameras/')))
          .map((i) => i.outerHTML),
        bold: document.querySelectorAll('b').length,
        title: document.title,
      };
    }, [cams.hostile, cams.quoted]);
    if (r.hostile.text !== cams.hostile.name || r.hostile.elements) fail('the hostile name is not plain text', r);
    if (r.quoted.text !== cams.quoted.name || r.quoted.elements) fail('the quoted name is not plain text', r);
    if (r.images.length || r.bold) fail('a name became markup', r);
    return r;
  });

  await check('states_arrive_live', async () => {
    const { hostile, quoted, switchable, missing } = cams;
    // The Gate camera goes down and comes back while its panel is open; meanwhile the others
    // reach their states (the missing one is DOWN after its second heartbeat).
    await waitForState(page, switchable.id, 'UP');
    await page.click(`${card(switchable.id)} h3 a`);
    await page.waitForFunction((name) => !document.getElementById('camera').hidden
      && document.getElementById('camera-title').textContent === name, switchable.name);
    // The page fetched the list at its start and again when the event feed opened; from here
    // on only the feed may change what it shows.
    await page.waitForFunction(() => (window.__probe.fetches['GET /api/cameras'] || 0) >= 2);
    const listFetches = await page.evaluate(() => window.__probe.fetches['GET /api/cameras'] || 0);
    // Every state the Gate camera's badge shows from now on, in order.
    await page.evaluate((id) => {
      window.__seen = [];
      const grid = document.getElementById('camera-grid');
      const note = () => {
        const b = grid.querySelector(`li[data-id="${CSS.escape(id)}"] .badge`);
        const t = b ? b.textContent : '(no card)';
        if (window.__seen[window.__seen.length - 1] !== t) window.__seen.push(t);
      };
      note();
      new MutationObserver(note).observe(grid, { childList: true, subtree: true, characterData: true });
    }, switchable.id);
    await ask({ ask: 'mjpeg_mode', mode: 'not_found' });
    const downAt = Date.now();
    await Promise.all([
      waitForState(page, hostile.id, 'UP'),
      waitForState(page, quoted.id, 'UP'),
      waitForState(page, missing.id, 'DOWN', 'not_found'),
      waitForState(page, switchable.id, 'DOWN', 'not_found'),
    ]);
    const downAfterMs = Date.now() - downAt;
    await page.waitForFunction(() => document.getElementById('fleet-counts').textContent === '2 UP, 2 DOWN');
    // The open panel follows: its state changes and its chart (time down in the last column).
    await page.waitForFunction(() => {
      const first = document.querySelector('#change-list li');
      return first && first.textContent.includes('DOWN from PENDING · not_found')
        && document.querySelector('#history-chart .col .down')
        && document.getElementById('camera-state').textContent === 'DOWN · not_found';
    });
    await ask({ ask: 'mjpeg_mode', mode: 'live' });
    const upAt = Date.now();
    await waitForState(page, switchable.id, 'UP');
    const upAfterMs = Date.now() - upAt;
    await page.waitForFunction(() => {
      const items = [...document.querySelectorAll('#change-list li')].map((li) => li.textContent);
      return items.length && items[0].includes('UP from DOWN') && items.some((t) => t.includes('UP (first heartbeat)'));
    });
    await page.waitForFunction(() => document.getElementById('fleet-counts').textContent === '3 UP, 1 DOWN');
    const r = await page.evaluate(() => ({
      seen: window.__seen,
      loadId: window.__probe.loadId,
      listFetches: window.__probe.fetches['GET /api/cameras'] || 0,
      changes: [...document.querySelectorAll('#change-list li')].map((li) => li.textContent),
    }));
    const shown = await cards(page);
    const facts = Object.fromEntries(shown.map((c) => [c.id, { badge: c.badge, facts: c.facts }]));
    if (r.loadId !== loadId) fail('the page reloaded');
    if (r.listFetches !== listFetches) fail(`the list was fetched again (${listFetches} → ${r.listFetches}): not a live update`);
    const pending = r.seen.findIndex((t) => t.startsWith('PENDING'));
    const down = r.seen.findIndex((t) => t.startsWith('DOWN'));
    if (!(pending >= 0 && down > pending && r.seen[r.seen.length - 1] === 'UP')) fail('states seen', r.seen);
    const [hw, hh] = hostile.size;
    const [qw, qh] = quoted.size;
    if (!facts[hostile.id].facts.includes(`${hw}×${hh}`)) fail('the MJPEG camera\'s size', facts[hostile.id]);
    if (!facts[quoted.id].facts.includes(`${qw}×${qh}`)) fail('the RTSP camera\'s size', facts[quoted.id]);
    if (!/\d+ ms/.test(facts[hostile.id].facts)) fail('latency', facts[hostile.id]);
    return { ...r, downAfterMs, upAfterMs, facts };
  });

  await check('thumbnails_show_the_pictures', async () => {
    const { hostile, missing } = cams;
    // The MJPEG camera's card shows its picture, a white ball on black (videotestsrc), at
    // its size; the camera that never sent video shows that it has none.
    await page.waitForFunction((id) => {
      const img = document.querySelector(`#camera-grid li[data-id="${CSS.escape(id)}"] img.thumb`);
      return img && !img.hidden && img.complete && img.naturalWidth > 0;
    }, hostile.id, { timeout: STATE_TIMEOUT });
    const r = await page.evaluate(([h, m]) => {
      const li = (id) => document.querySelector(`#camera-grid li[data-id="${CSS.escape(id)}"]`);
      const img = li(h).querySelector('img.thumb');
      const canvas = document.createElement('canvas');
      [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let [sum, brightest, grey] = [[0, 0, 0], 0, 0];
      for (let i = 0; i < px.length; i += 4) {
        for (let c = 0; c < 3; c++) sum[c] += px[i + c];
        brightest = Math.max(brightest, px[i], px[i + 1], px[i + 2]);
        grey = Math.max(grey, Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]));
      }
      const n = px.length / 4;
      const box = img.getBoundingClientRect();
      const name = li(h).querySelector('h3').getBoundingClientRect();
      return {
        size: [img.naturalWidth, img.naturalHeight],
        mean: sum.map((s) => Math.round(s / n)),
        brightest,
        grey,
        pictureAboveName: box.bottom <= name.top + 0.5,
        missing: { img: li(m).querySelector('img.thumb').hidden, none: li(m).querySelector('.thumb-none').hidden },
      };
    }, [hostile.id, missing.id]);
    if (r.size[0] !== hostile.size[0] || r.size[1] !== hostile.size[1]) fail(`a ${hostile.size.join('×')} thumbnail`, r);
    if (!(Math.max(...r.mean) < 80 && r.brightest > 200 && r.grey < 60)) fail('a white ball on black', r);
    if (!r.pictureAboveName) fail('the picture is on top of the card', r);
    if (!(r.missing.img && !r.missing.none)) fail('a camera without video says it has no picture', r);
    return r;
  });

  await check('detail_panel', async () => {
    const { hostile } = cams;
    await page.click(`${card(hostile.id)} h3 a`);
    await page.waitForFunction((name) => document.getElementById('camera-title').textContent === name, hostile.name);
    await page.waitForFunction(() => document.querySelectorAll('#history-chart .col').length === 96
      && document.querySelector('#history-chart .col .up')
      && [...document.querySelectorAll('#change-list li')].some((li) => li.textContent.includes('UP (first heartbeat)')));
    // The uptime of the camera as the API has it now (not the list's from the page's start).
    await page.waitForFunction(() => /Uptime 24 h · 7 d · 30 d\d+(\.\d+)? %/.test(document.getElementById('camera-facts').textContent));
    // "x ago" keeps counting between heartbeats: three different values within 4.5 s, where
    // heartbeats (every 5 s) alone would give at most two. (The ticker runs every second; the
    // window leaves room for a renderer slowed by a busy machine.)
    const ages = await page.evaluate(() => new Promise((resolve) => {
      const seen = [];
      const done = () => { clearInterval(timer); clearTimeout(limit); resolve(seen); };
      const timer = setInterval(() => {
        const t = document.querySelector('#camera-facts .ago').textContent;
        if (seen[seen.length - 1] !== t) seen.push(t);
        if (new Set(seen).size >= 3) done();
      }, 100);
      const limit = setTimeout(done, 4500);
    }));
    const r = await page.evaluate(() => ({
      title: document.getElementById('camera-title').textContent,
      titleElements: document.getElementById('camera-title').childElementCount,
      hash: window.location.hash,
      facts: document.getElementById('camera-facts').textContent,
    }));
    if (r.titleElements) fail('the title holds elements', r);
    if (r.hash !== `#${hostile.id}`) fail('the address names the camera', r);
    if (new Set(ages).size < 3) fail('relative times stand still', ages);
    await screenshot(page, 'camera-detail');
    return { ...r, ages };
  });
  /** Clicks "Show a picture" on the open panel; the picture's natural size and caption, which
   * says where it came from (`source`: logged out, the last heartbeat's; logged in, grabbed). */
  async function preview(c, source) {
    await page.click(`${card(c.id)} h3 a`);
    await page.waitForFunction((name) => document.getElementById('camera-title').textContent === name, c.name);
    await page.click('#preview-button');
    // Done when the caption says what came (a size, or why none).
    await page.waitForFunction(() => /^(\d+×\d+, |No picture)/.test(document.getElementById('preview-state').textContent),
      null, { timeout: 15000 });
    const r = await page.evaluate(() => {
      const img = document.getElementById('preview');
      return { width: img.naturalWidth, height: img.naturalHeight, hidden: img.hidden, alt: img.alt,
        caption: document.getElementById('preview-state').textContent };
    });
    if (r.hidden || r.width !== c.size[0] || r.height !== c.size[1]) fail(`a ${c.size.join('×')} picture`, r);
    if (r.alt !== `Picture from ${c.name}`) fail('the alt text', r);
    if (!r.caption.startsWith(`${c.size[0]}×${c.size[1]}, ${source}`)) fail('the caption', r);
    return r;
  }
  await check('preview_mjpeg', () => preview(cams.hostile, 'from the last heartbeat'));
  await check('preview_rtsp', () => preview(cams.quoted, 'from the last heartbeat'));

  await check('login', async () => {
    const before = await page.locator('#camera-form').isVisible();
    await page.fill('#password', spec.password);
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('who').textContent.startsWith('Logged in as admin'));
    await page.locator('#camera-form').waitFor({ state: 'visible' });
    const editButtons = await page.locator('#camera-grid .needs-login button:visible').count();
    if (before) fail('the editor showed before logging in');
    if (editButtons !== 2 * Object.keys(cams).length) fail(`${editButtons} edit/delete buttons`);
    return { who: await page.textContent('#who'), editButtons };
  });

  await check('preview_grabbed', () => preview(cams.quoted, 'grabbed from the camera'));

  await check('bad_url_refused', async () => {
    const before = statuses.length;
    await page.fill('#form-name', 'Bad scheme');
    await page.fill('#form-url', spec.bad_url);
    await page.click('#form-submit');
    await page.waitForFunction(() => document.getElementById('form-result').classList.contains('error'));
    const message = await page.textContent('#form-result');
    const answer = statuses.slice(before).find((s) => s.method === 'POST' && s.path === '/api/cameras');
    if (!answer || answer.status !== 422) fail('the server answered', answer);
    if (!message.includes('refused') || !message.includes('scheme `ftp` is not supported') || !message.includes('rtsp://')) {
      fail('the message', message);
    }
    const count = (await cards(page)).length;
    if (count !== Object.keys(cams).length) fail(`${count} cards after a refused add`);
    return { message, status: answer.status };
  });

  let addedId = null;
  await check('add_camera', async () => {
    const { added } = spec;
    await page.fill('#form-name', added.name);
    await page.fill('#form-url', added.url);
    await page.fill('#form-heartbeat', '');
    await page.click('#form-submit');
    await page.waitForFunction((name) => [...document.querySelectorAll('#camera-grid li.camera-card h3 a')]
      .some((a) => a.textContent === name), added.name);
    const shown = (await cards(page)).find((c) => c.name === added.name);
    addedId = shown.id;
    // Its first heartbeat arrives on the event feed (the camera needs the password).
    await waitForState(page, addedId, 'UP');
    const after = (await cards(page)).find((c) => c.id === addedId);
    const result = await page.textContent('#form-result');
    if (!result.endsWith(': done')) fail('the result line', result);
    if (shown.nameElements) fail('the name became markup', shown);
    if (!after.url.includes(':***@') || spec.secrets.some((s) => after.url.includes(s))) fail('the URL is not masked', after.url);
    return { id: addedId, name: shown.name, url: after.url, badge: after.badge, result };
  });

  await check('rename_camera', async () => {
    const { added } = spec;
    if (!addedId) fail('nothing was added');
    await page.click(`${card(addedId)} button:text("Edit")`);
    const form = await page.evaluate(() => ({
      name: document.getElementById('form-name').value,
      url: document.getElementById('form-url').value,
      submit: document.getElementById('form-submit').textContent,
    }));
    if (form.name !== added.name || !form.url.includes(':***@') || spec.secrets.some((s) => form.url.includes(s))) {
      fail('the form', form);
    }
    await page.fill('#form-name', added.renamed);
    await page.click('#form-submit');
    await page.waitForFunction(([id, name]) => {
      const a = document.querySelector(`#camera-grid li[data-id="${CSS.escape(id)}"] h3 a`);
      return a && a.textContent === name;
    }, [addedId, added.renamed]);
    const count = (await cards(page)).length;
    if (count !== Object.keys(cams).length + 1) fail(`${count} cards after the rename`);
    // The password the page never saw is still in the file.
    const { found } = await ask({ ask: 'file_has_url', url: added.url });
    if (!found) fail('the rename lost the camera\'s password');
    return { form, id: addedId, renamed: added.renamed, passwordKept: found };
  });

  await check('probe_limits_setting', async () => {
    // A camera's own frozen and black limits and packets lost through the form: a number is
    // sent and listed as the camera's own, an empty field sends null (the list's applies), and
    // the form shows the camera's own values when it is edited again.
    if (!addedId) fail('nothing was added');
    const bodies = [];
    const onRequest = (r) => {
      if (r.method() === 'PUT' && new URL(r.url()).pathname === `/api/cameras/${addedId}`) bodies.push(JSON.parse(r.postData() || 'null'));
    };
    page.on('request', onRequest);
    const listed = () => page.evaluate(async (id) => {
      const cam = (await (await fetch('/api/cameras')).json()).cameras.find((c) => c.id === id);
      return { frozen: [cam.frozen_seconds, cam.frozen_override], black: [cam.black_seconds, cam.black_override],
        packets: [cam.max_packets_lost, cam.max_packets_lost_override] };
    }, addedId);
    const save = async (values) => {
      await page.click(`${card(addedId)} button:text("Edit")`);
      const shown = await page.evaluate(() => ['form-frozen', 'form-black', 'form-packets'].map((f) => document.getElementById(f).value));
      for (const [field, value] of Object.entries(values)) await page.fill(`#${field}`, value);
      await page.evaluate(() => { document.getElementById('form-result').textContent = ''; });
      await page.click('#form-submit');
      await page.waitForFunction(() => document.getElementById('form-result').textContent.endsWith(': done'));
      return shown;
    };
    try {
      const before = await listed();
      await save({ 'form-frozen': '0', 'form-black': '120', 'form-packets': '' });
      const set = await listed();
      const shownAgain = await save({ 'form-black': '' });
      const cleared = await listed();
      if (set.frozen[1] !== 0 || set.black[1] !== 120 || set.black[0] !== 120 || set.packets[1] !== null) fail('set', set);
      if (shownAgain.join(',') !== '0,120,') fail('the form shows the camera\'s own values', shownAgain);
      if (cleared.black[1] !== null || cleared.black[0] !== before.black[0] || cleared.frozen[1] !== 0) fail('cleared', cleared);
      const sent = bodies.map((b) => [b.frozen_seconds, b.black_seconds, b.max_packets_lost]);
      if (JSON.stringify(sent) !== JSON.stringify([[0, 120, null], [0, null, null]])) fail('the form sent', sent);
      return { before, set, shownAgain, cleared, sent };
    } finally {
      page.off('request', onRequest);
    }
  });

  await check('delete_camera', async () => {
    if (!addedId) fail('nothing was added');
    const seen = dialogs.length;
    expectConfirm = true;
    await page.click(`${card(addedId)} button:text("Delete")`);
    await page.waitForFunction((id) => !document.querySelector(`#camera-grid li[data-id="${CSS.escape(id)}"]`), addedId);
    const confirm = dialogs.slice(seen);
    if (confirm.length !== 1 || confirm[0].type !== 'confirm' || !confirm[0].message.includes(spec.added.renamed)) {
      fail('one confirm naming the camera', confirm);
    }
    const count = (await cards(page)).length;
    if (count !== Object.keys(cams).length) fail(`${count} cards after the delete`);
    return { confirm: confirm[0].message, result: await page.textContent('#form-result') };
  });

  await check('time_zone_setting', async () => {
    // A zone the server does not know: its reason, nothing changed.
    await page.fill('#settings-timezone', 'Mars/Olympus_Mons');
    await page.click('#settings-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('settings-result').classList.contains('error'));
    const refused = await page.textContent('#settings-result');
    if (!refused.includes('refused') || !refused.includes('time zone')) fail('the refusal', refused);
    // A real one: the open camera's times are shown in it.
    await page.click(`${card(cams.hostile.id)} h3 a`);
    await page.waitForFunction((name) => document.getElementById('camera-title').textContent === name, cams.hostile.name);
    await page.fill('#settings-timezone', spec.time_zone);
    await page.click('#settings-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('settings-result').textContent.endsWith(': done'));
    await page.click(`${card(cams.quoted.id)} h3 a`);
    await page.waitForFunction((name) => document.getElementById('camera-title').textContent === name, cams.quoted.name);
    await page.waitForFunction(() => document.querySelector('#change-list time'));
    const r = await page.evaluate((zone) => {
      const t = document.querySelector('#change-list time');
      const expected = new Intl.DateTimeFormat(undefined, { timeZone: zone, dateStyle: 'short', timeStyle: 'medium' })
        .format(new Date(t.dateTime));
      return { shown: t.textContent, expected, field: document.getElementById('settings-timezone').value };
    }, spec.time_zone);
    if (r.shown !== r.expected || r.field !== spec.time_zone) fail(`times not in ${spec.time_zone}`, r);
    return { refused, ...r };
  });

  await check('verify_tls_setting', async () => {
    // The list's verify_tls through the settings form: unticked, `verify_tls: false` is
    // written; ticked again, the form clears it (null) and the key leaves the file.
    const bodies = [];
    const onRequest = (r) => {
      if (r.method() === 'PUT' && new URL(r.url()).pathname === '/api/cameras/settings') bodies.push(JSON.parse(r.postData() || 'null'));
    };
    page.on('request', onRequest);
    const listed = () => page.evaluate(async () => (await (await fetch('/api/cameras')).json()).verify_tls);
    const save = async (ticked) => {
      await page.evaluate(() => { document.getElementById('settings-result').textContent = ''; });
      await page.setChecked('#settings-verify-tls', ticked);
      await page.click('#settings-form button[type=submit]');
      await page.waitForFunction(() => document.getElementById('settings-result').textContent.endsWith(': done'));
    };
    try {
      if (!(await page.isChecked('#settings-verify-tls'))) fail('the box starts unticked though the list verifies');
      await save(false);
      const offInFile = (await ask({ ask: 'file_has_line', line: 'verify_tls: false' })).found;
      const offListed = await listed();
      if (!offInFile) fail('`verify_tls: false` was not written');
      if (offListed !== false) fail(`the API says verify_tls ${offListed} after unticking`);
      await save(true);
      const stillInFile = (await ask({ ask: 'file_has_key', key: 'verify_tls' })).found;
      const onListed = await listed();
      if (stillInFile) fail('ticking the box again left `verify_tls` in the file');
      if (onListed !== true) fail(`the API says verify_tls ${onListed} after ticking again`);
      const sent = bodies.map((b) => (b && 'verify_tls' in b ? b.verify_tls : 'absent'));
      if (sent.length !== 2 || sent[0] !== false || sent[1] !== null) fail('the form sent', sent);
      return { sent, offInFile, offListed, stillInFile, onListed };
    } finally {
      page.off('request', onRequest);
    }
  });

  await check('phone_fits', async () => {
    const p = await open(`/cameras#${cams.hostile.id}`, { width: 390, height: 844 });
    await p.waitForFunction((n) => document.querySelectorAll('#camera-grid li.camera-card').length === n
      && !document.getElementById('camera').hidden && document.body.classList.contains('logged-in'),
    Object.keys(cams).length);
    await p.waitForTimeout(500);
    await screenshot(p, 'cameras-phone');
    const r = await p.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      outside: [...document.querySelectorAll('main section:not([hidden]), #camera-grid li, .editor-form, #site-header')]
        .map((e) => ({ what: e.id || e.dataset.id || e.className, box: e.getBoundingClientRect() }))
        .filter(({ box }) => box.left < 0 || box.right > window.innerWidth + 0.5)
        .map(({ what, box }) => ({ what, left: Math.round(box.left), right: Math.round(box.right) })),
    }));
    if (r.scrollWidth > r.innerWidth) fail(`scrolls sideways: ${r.scrollWidth} > ${r.innerWidth}`, r.outside);
    if (r.outside.length) fail('wider than the screen', r.outside);
    // Tapping a camera brings its panel (below the grid) into view.
    await p.click(`${card(cams.missing.id)} h3 a`);
    await p.waitForFunction((name) => document.getElementById('camera-title').textContent === name, cams.missing.name);
    const panelTop = await p.evaluate(() => Math.round(document.getElementById('camera').getBoundingClientRect().top));
    if (panelTop < -1 || panelTop > 844 / 2) fail(`the opened panel is at ${panelTop} px, out of view`);
    return { ...r, panelTop };
  });

  await check('dashboard_links_here', async () => {
    const p = await open('/');
    const link = p.locator('#site-header nav a[href="/cameras"]');
    await link.click();
    await p.waitForURL(`${base}/cameras`);
    await p.waitForFunction((n) => document.querySelectorAll('#camera-grid li.camera-card').length === n,
      Object.keys(cams).length);
    const current = await p.getAttribute('#site-header nav a[aria-current="page"]', 'href');
    if (current !== '/cameras') fail(`the header marks ${current} as the current page`);
    return { url: p.url(), current };
  });

  await check('hand_edit_appears', async () => {
    // A camera added to cameras.yaml by hand: the page learns of it from its first heartbeat.
    // A page opened now, so its once-a-minute fetch of the list cannot be what shows it.
    const name = spec.hand_added.name;
    const p = await open('/cameras');
    await p.waitForFunction((n) => document.querySelectorAll('#camera-grid li.camera-card').length === n,
      Object.keys(cams).length);
    const pageLoadId = await p.evaluate(() => window.__probe.loadId);
    await ask({ ask: 'hand_edit' });
    const asked = Date.now();
    await p.waitForFunction((n) => [...document.querySelectorAll('#camera-grid li.camera-card h3 a')]
      .some((a) => a.textContent === n), name, { timeout: STATE_TIMEOUT });
    const shownAfterMs = Date.now() - asked;
    const shown = (await cards(p)).find((c) => c.name === name);
    await waitForState(p, shown.id, 'UP');
    if (await p.evaluate(() => window.__probe.loadId) !== pageLoadId) fail('the page reloaded');
    return { id: shown.id, shownAfterMs };
  });
} catch (e) {
  checks.harness = { ok: false, error: String(e && e.stack ? e.stack : e) };
} finally {
  const probes = [];
  for (const p of pages) {
    if (!p.isClosed()) probes.push(await p.evaluate(() => window.__probe).catch(() => null));
  }
  await browser.close();
  // Errors of the cameras page (the dashboard at / has no streamer to show and may log
  // failed requests), except the 422s of the refused URL and time zone; nothing refused by
  // the Content-Security-Policy anywhere; no dialog but the delete's confirm; no element a
  // name smuggled in.
  const csp = probes.flatMap((p) => (p ? p.csp : []));
  const injected = probes.flatMap((p) => (p ? p.injected : []));
  const refused = consoleErrors.filter((e) => /Content.Security.Policy|Refused to/i.test(e.text));
  const refusedOnPurpose = ['/api/cameras', '/api/cameras/settings'];
  const errors = consoleErrors.filter((e) => e.page.startsWith('/cameras')
    && !(/status of 422/.test(e.text) && refusedOnPurpose.includes(new URL(e.url || base).pathname)));
  const unexpectedDialogs = dialogs.filter((d) => !d.expected);
  checks.page_errors = {
    ok: !csp.length && !injected.length && !refused.length && !errors.length && !unexpectedDialogs.length,
    csp, injected, refused, errors, dialogs, allConsoleErrors: consoleErrors,
  };
}
const ok = Object.values(checks).every((c) => c.ok);
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
