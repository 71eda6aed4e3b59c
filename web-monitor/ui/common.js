// Shared by the dashboard's pages (the dashboard, the cameras page): building DOM nodes
// without innerHTML, the JSON API (errors are {"error": "..."}), server-sent events that say
// when they are lost, the login state, the shared header, and formatting.

/** Creates an element. `props`: `class`, `text` (textContent), `dataset`, `hidden`, `on`
 * ({event: handler}), any other key as an attribute. Children are nodes or strings (as text). */
export function el(tag, props = {}, ...children) {
  const node = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'hidden') node.hidden = Boolean(value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces the children of `node`. */
export function setChildren(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** Sets text only when it changed (keeps selections and avoids layout work). */
export function setText(node, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** An API failure: `status` 0 when the dashboard could not be reached at all. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `the dashboard cannot be reached (${e.message})`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const why = data && typeof data.error === 'string' ? data.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, why);
  }
  return data;
}

export const getJson = (path) => request('GET', path);
export const postJson = (path, body = {}) => request('POST', path, body);
export const putJson = (path, body = {}) => request('PUT', path, body);
export const deleteJson = (path) => request('DELETE', path);

/**
 * Server-sent events that report their own health. `onState(state, detail)` hears
 * `connecting`, `open` and `lost` (EventSource retries by itself; `lost` until it is back).
 * `handlers` maps event names to functions taking the parsed JSON data.
 */
export class EventFeed {
  constructor(url, handlers, onState = () => {}) {
    this.url = url;
    this.handlers = handlers;
    this.onState = onState;
    this.source = null;
    this.lastEventAt = 0;
  }

  open() {
    this.close();
    this.onState('connecting');
    const source = new EventSource(this.url);
    this.source = source;
    source.onopen = () => this.onState('open');
    source.onerror = () => {
      if (this.source !== source) return;
      this.onState('lost');
      // A closed source (HTTP error answer) does not retry by itself.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(() => { if (this.source === source) this.open(); }, 3000);
      }
    };
    for (const [name, handler] of Object.entries(this.handlers)) {
      source.addEventListener(name, (event) => {
        this.lastEventAt = Date.now();
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        handler(data);
      });
    }
    return this;
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
  }
}

/** The login state, shared by the page's parts: `session.loggedIn`, `session.via`,
 * `session.subscribe(fn)`. */
export const session = {
  loggedIn: false,
  via: null,
  listeners: new Set(),
  subscribe(fn) {
    this.listeners.add(fn);
    fn(this);
  },
  set(info) {
    this.loggedIn = Boolean(info && info.logged_in);
    this.via = info ? info.via : null;
    for (const fn of this.listeners) fn(this);
  },
  async refresh() {
    try {
      this.set(await getJson('/api/session'));
    } catch {
      this.set(null);
    }
  },
  async login(password) {
    this.set(await postJson('/api/login', { password }));
  },
  async logout() {
    this.set(await postJson('/api/logout'));
  },
};

/** Runs a state-changing `call` (a function returning the API's promise) and reports its
 * answer, or the server's reason, in `out`; true when it was done. A 401 means the session
 * ended: the header shows the login form again. */
export async function report(out, what, call) {
  out.classList.remove('error', 'ok');
  setText(out, `${what}…`);
  try {
    const answer = await call();
    out.classList.add('ok');
    setText(out, `${what}: ${answer && answer.message ? answer.message : 'done'}`);
    return true;
  } catch (e) {
    out.classList.add('error');
    setText(out, `${what} refused: ${e.message}`);
    if (e.status === 401) session.refresh();
    return false;
  }
}

/** [`report`] of a POST of `body` to `path`. */
export const act = (out, what, path, body) => report(out, what, () => postJson(path, body));

/** The shared header: the site's name, the pages, and the login form or who is logged in. */
export function mountHeader(current) {
  const header = document.getElementById('site-header');
  const pages = [['/', 'Dashboard'], ['/cameras', 'Cameras']];
  const nav = el('nav', { 'aria-label': 'Pages' },
    pages.map(([href, label]) => el('a', { href, 'aria-current': href === current ? 'page' : null, text: label })));
  const who = el('span', { id: 'who', class: 'who' });
  const password = el('input', {
    id: 'password', type: 'password', name: 'password', autocomplete: 'current-password',
    placeholder: 'Admin password', required: true, 'aria-label': 'Admin password',
  });
  const loginError = el('span', { id: 'login-error', class: 'error', role: 'alert' });
  const form = el('form', { id: 'login-form', class: 'login' }, password, el('button', { type: 'submit', text: 'Log in' }));
  const logout = el('button', { id: 'logout', type: 'button', text: 'Log out', hidden: true });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    setText(loginError, '');
    try {
      await session.login(password.value);
      password.value = '';
    } catch (e) {
      setText(loginError, e.message);
    }
  });
  logout.addEventListener('click', async () => {
    try {
      await session.logout();
    } catch (e) {
      setText(loginError, e.message);
    }
  });
  setChildren(header,
    el('a', { class: 'brand', href: '/', text: 'desktop-streamer' }),
    nav,
    el('div', { class: 'account' }, who, form, logout, loginError));
  session.subscribe((s) => {
    form.hidden = s.loggedIn;
    logout.hidden = !s.loggedIn || s.via !== 'session';
    setText(who, s.loggedIn ? `Logged in as admin${s.via === 'token' ? ' (API token)' : ''}` : 'Not logged in');
    document.body.classList.toggle('logged-in', s.loggedIn);
  });
  session.refresh();
}

/** "12 s", "4 min", "3 h 5 min", "2 d 4 h". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, seconds);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A number with a unit, or a dash when it is unknown. */
export function formatNumber(value, unit = '', digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${value.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A local time for a timestamp string; the string itself if it does not parse. */
export function formatTime(timestamp) {
  if (!timestamp) return '—';
  const d = new Date(timestamp);
  if (Number.isNaN(d.getTime())) return String(timestamp);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
