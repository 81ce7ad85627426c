// The delivery console's page. It reads the JSON API (/api/…) and builds every element with
// createElement and textContent: no value from a payload is ever parsed as HTML (no innerHTML,
// no insertAdjacentHTML, no document.write), and the CSP runs no inline script.

const KIND = { vdc: 'virtual device job', rdc: 'real device job', visual: 'Visual build' };
const KIND_SHORT = { vdc: 'VDC job', rdc: 'RDC job', visual: 'Visual' };
const OUTCOME_TONE = { stored: 'info', retrying: 'warn', dispatched: 'ok', dead: 'bad', duplicate: '', filtered: '', refused: 'bad' };
const FILTERS = ['outcome', 'route', 'kind', 'repo', 'q'];
const PAGE_SIZE = 50;

const state = {
  session: null,
  marker: null,
  /** Cursors of the pages before the one shown (for "Newer"); the one shown; the next one. */
  back: [],
  cursor: null,
  next: null,
  loading: false,
  pending: false,
};

// ------------------------------------------------------------------------------------------
// DOM helpers: text only

function byId(id) {
  return document.getElementById(id);
}

/** An element with a class, attributes and children (strings become text nodes). */
function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  for (const [name, value] of Object.entries(options.attrs ?? {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return node;
}

function badge(text, tone) {
  return el('span', { className: tone ? `badge ${tone}` : 'badge' }, text);
}

/** A link inside the page (hash routes only: every href is built here, never taken from a payload). */
function pageLink(hash, text) {
  return el('a', { attrs: { href: hash } }, text);
}

function deliveryHash(id) {
  return `#/d/${encodeURIComponent(id)}`;
}

// ------------------------------------------------------------------------------------------
// Times

function ago(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const future = ms < 0;
  let text;
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.round(s / 60)} min`;
  else if (s < 86400) text = `${Math.round(s / 3600)} h`;
  else text = `${Math.round(s / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

function timeEl(at, relative = true) {
  if (at === null || at === undefined) return el('span', { className: 'muted' }, '—');
  const date = new Date(at);
  const node = el('time', { attrs: { datetime: date.toISOString(), title: date.toLocaleString(), 'data-at': at, 'data-relative': relative ? '1' : '0' } });
  node.textContent = relative ? ago(Date.now() - at) : date.toLocaleString();
  return node;
}

function refreshTimes() {
  for (const node of document.querySelectorAll('time[data-relative="1"]')) node.textContent = ago(Date.now() - Number(node.dataset.at));
}

// ------------------------------------------------------------------------------------------
// The API

class SignedOut extends Error {}

async function api(path, options = {}) {
  const init = { credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (options.post) {
    init.method = 'POST';
    init.headers['content-type'] = 'application/json';
    init.headers['x-csrf-token'] = state.session?.csrf ?? '';
    init.body = '{}';
  }
  const response = await fetch(path, init);
  if (response.status === 401) throw new SignedOut('signed out');
  const body = await response.json().catch(() => ({}));
  return { status: response.status, ok: response.ok, body };
}

function signedOut() {
  window.location.assign('/console');
}

// ------------------------------------------------------------------------------------------
// Describing a delivery

function outcomeText(outcome) {
  switch (outcome.state) {
    case 'stored':
      return 'waiting for dispatch';
    case 'retrying':
      return `attempt ${outcome.attempts} failed, next ${ago(Date.now() - outcome.nextAttemptAt)}${outcome.lastError ? `: ${outcome.lastError}` : ''}`;
    case 'dispatched': {
      const parts = [];
      if (outcome.status !== null) parts.push(`GitHub ${outcome.status}${outcome.message ? ` ${outcome.message}` : ''}`);
      if (outcome.dispatchId) parts.push(`dispatch ${outcome.dispatchId}`);
      if (outcome.at !== null) parts.push(ago(Date.now() - outcome.at));
      return parts.join(' · ');
    }
    case 'dead':
      return `${outcome.reason} (${outcome.attempts} attempt${outcome.attempts === 1 ? '' : 's'})`;
    case 'duplicate':
      return outcome.of ? `same body as ${outcome.of}` : 'same body as a stored event';
    case 'filtered':
      return `${outcome.code}: ${outcome.reason}`;
    case 'refused':
      return `${outcome.status} ${outcome.code}: ${outcome.reason}`;
    default:
      return '';
  }
}

function sauceBadge(event) {
  if (!event) return el('span', { className: 'muted' }, '—');
  const failed = ['FAILED', 'ERRORED', 'REJECTED', 'UNAPPROVED'].includes(event.status) || event.passed === false;
  const good = ['PASSED', 'APPROVED', 'EQUAL'].includes(event.status) || event.passed === true;
  return badge(event.passed === false && event.status === 'COMPLETE' ? 'FAILED' : event.status, failed ? 'bad' : good ? 'ok' : '');
}

function commitText(commit) {
  if (!commit) return null;
  if (commit.kind === 'sha' || commit.kind === 'short-sha') return commit.value.slice(0, 7);
  if (commit.kind === 'pull') return `PR #${commit.value}`;
  return `${commit.kind} ${commit.value}`;
}

function displayName(item) {
  if (item.event?.name) return item.event.name;
  if (item.event) return `(no name) ${item.event.sauceId}`;
  return item.type === 'request' ? `${item.outcome.state} request` : '(not a Sauce event)';
}

// ------------------------------------------------------------------------------------------
// The list

function filtersFromHash() {
  const q = window.location.hash.indexOf('?');
  const params = new URLSearchParams(q === -1 ? '' : window.location.hash.slice(q + 1));
  const out = {};
  for (const name of FILTERS) out[name] = params.get(name) ?? '';
  return out;
}

function filtersToHash(filters) {
  const params = new URLSearchParams();
  for (const name of FILTERS) if (filters[name]) params.set(name, filters[name]);
  const text = params.toString();
  return text ? `#/?${text}` : '#/';
}

function readForm() {
  const form = byId('filters');
  const out = {};
  for (const name of FILTERS) out[name] = form.elements[name].value.trim();
  return out;
}

function fillForm(filters) {
  const form = byId('filters');
  for (const name of FILTERS) {
    const field = form.elements[name];
    if (field.value !== filters[name] && document.activeElement !== field) field.value = filters[name];
  }
}

/** A list cell: its label (shown on phones) and one wrapper around its content. */
function cell(label, className, ...children) {
  return el('td', { className, attrs: { 'data-label': label } }, el('div', {}, ...children));
}

function row(item) {
  const open = () => window.location.assign(deliveryHash(item.id));
  const tr = el('tr', { attrs: { 'data-id': item.id, 'data-outcome': item.outcome.state } });
  tr.addEventListener('click', (e) => {
    if (e.target instanceof Element && e.target.closest('a')) return;
    open();
  });
  const kind = item.event ? KIND_SHORT[item.event.kind] : '—';
  const commit = commitText(item.event?.commit ?? null);
  tr.append(
    cell('Received', '', timeEl(item.receivedAt)),
    cell('Route', '', item.route ?? '—'),
    cell('Kind', '', kind),
    cell(
      'Job or build',
      'name',
      pageLink(deliveryHash(item.id), displayName(item)),
      item.event?.build ? el('span', { className: 'sub' }, item.event.build) : null,
    ),
    cell('Sauce', '', sauceBadge(item.event)),
    cell('Commit', '', el('span', { className: 'mono' }, commit ?? '—'), item.repo ? el('span', { className: 'sub' }, `→ ${item.repo}`) : null),
    cell('Outcome', '', badge(item.outcome.state, OUTCOME_TONE[item.outcome.state]), el('span', { className: 'sub outcome-text' }, outcomeText(item.outcome))),
  );
  return tr;
}

async function loadList() {
  const filters = filtersFromHash();
  fillForm(filters);
  const params = new URLSearchParams();
  for (const name of FILTERS) if (filters[name]) params.set(name, filters[name]);
  if (state.cursor) params.set('cursor', state.cursor);
  params.set('limit', String(PAGE_SIZE));
  const { ok, body } = await api(`/api/deliveries?${params}`);
  if (!ok) {
    toast(body.error === 'bad query' ? `Bad filter: ${(body.issues ?? []).map((i) => `${i.field} ${i.message}`).join('; ')}` : 'Could not read the list');
    return;
  }
  state.marker = body.marker;
  state.next = body.next;
  const tbody = byId('deliveries').tBodies[0];
  tbody.replaceChildren(...body.items.map(row));
  byId('empty').hidden = body.items.length > 0;
  byId('empty').textContent = body.next ? 'Nothing matches on this page: try older ones.' : 'Nothing matches.';
  byId('older').disabled = !body.next;
  byId('newer').disabled = state.back.length === 0;
  byId('newest').disabled = state.cursor === null;
  const bulk = byId('bulk');
  bulk.hidden = !(filters.outcome === 'dead' && filters.route);
  byId('requeue-route').textContent = `Requeue all dead events of route ${filters.route}`;
}

// ------------------------------------------------------------------------------------------
// One delivery

function facts(pairs) {
  const dl = el('dl', { className: 'facts' });
  for (const [label, value] of pairs) {
    if (value === null || value === undefined || value === '') continue;
    dl.append(el('dt', {}, label), el('dd', {}, value));
  }
  return dl;
}

function section(title, ...content) {
  return el('section', {}, el('h2', {}, title), ...content);
}

/** A table of text; the columns in `long` may break anywhere (messages, ids). */
function table(headings, rows, long = []) {
  return el(
    'table',
    { className: 'plain' },
    el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c, i) => el('td', { className: long.includes(i) ? 'long' : '' }, c))))),
  );
}

function eventFacts(event) {
  if (!event) return [];
  return [
    ['Kind', KIND[event.kind]],
    [event.kind === 'visual' ? 'Visual build id' : 'Sauce job id', el('span', { className: 'mono' }, event.sauceId)],
    ['Sauce status', sauceBadge(event)],
    ['Build', event.build],
    ['Branch', event.branch],
  ];
}

async function loadDetail(id) {
  const view = byId('detail-view');
  const { status, body } = await api(`/api/deliveries/${encodeURIComponent(id)}`);
  if (status === 404) {
    view.replaceChildren(
      pageLink('#/', '← Deliveries'),
      el('h1', {}, 'Not found'),
      el('p', { className: 'muted' }, 'No delivery has this id (refused requests are kept for a limited time).'),
    );
    return;
  }
  const item = body.summary;
  const head = el('div', { className: 'detail-head' }, el('h1', {}, displayName(item)), badge(item.outcome.state, OUTCOME_TONE[item.outcome.state]));
  const children = [el('a', { className: 'back', attrs: { href: filtersToHash(savedFilters) } }, '← Deliveries'), head];
  const actions = el('div', { className: 'detail-actions' });
  if (body.type === 'event' && item.outcome.state === 'dead') {
    actions.append(
      actionButton('Requeue', 'primary', {
        title: 'Requeue this event?',
        text: 'It goes back in the queue, due now, and the dispatcher sends it to GitHub again.',
        ok: 'Requeue',
        name: 'requeue',
        path: `/api/deliveries/${encodeURIComponent(item.id)}/requeue`,
        done: 'Requeued: the dispatcher sends it now.',
      }),
      requeueRouteButton(item.route),
    );
  }
  if (body.type === 'event' && item.outcome.state === 'dispatched') {
    actions.append(
      actionButton('Send again', '', {
        title: 'Send this event again?',
        text: 'It goes back in the queue, due now; the Action writes its statuses and check runs again (a newer event of the same job still wins).',
        ok: 'Send again',
        name: 'resend',
        path: `/api/deliveries/${encodeURIComponent(item.id)}/resend`,
        done: 'Queued: the dispatcher sends it again now.',
      }),
    );
  }
  if (actions.childElementCount > 0) children.push(actions);

  if (body.type === 'event') {
    children.push(
      facts([
        ['Received', timeEl(item.receivedAt, false)],
        ['Relay id', el('span', { className: 'mono' }, item.id)],
        ['Route', item.route],
        ['Repository', item.repo],
        ['Event type', body.eventType],
        ...eventFacts(item.event),
        ['Outcome', outcomeText(item.outcome)],
        ['Requeued', body.requeuedAt ? timeEl(body.requeuedAt, false) : null],
      ]),
    );
    children.push(
      section(
        'The commit it maps to',
        body.commits.length === 0
          ? el('p', { className: 'muted' }, 'No commit in this event: the Action needs its sha input.')
          : el(
              'ol',
              { className: 'commits' },
              ...body.commits.map((c) => el('li', {}, el('span', { className: 'mono' }, c.value), ` (${c.kind}, from ${c.source})`)),
            ),
        body.commits.length > 1 ? el('p', { className: 'muted small' }, 'The Action tries these in order and takes the first that resolves.') : null,
      ),
    );
    children.push(
      section(
        'Dispatch attempts',
        body.attempts.length === 0
          ? el('p', { className: 'muted' }, 'None yet.')
          : table(
              ['When', 'Dispatch', 'Events', 'GitHub', 'Message', 'Result'],
              body.attempts.map((a) => [
                timeEl(a.at, false),
                el('span', { className: 'mono' }, a.dispatchId),
                String(a.events),
                a.status === null ? 'no answer' : String(a.status),
                a.message,
                badge(a.code ? `${a.result} ${a.code}` : a.result, a.result === 'sent' ? 'ok' : a.result === 'retry' ? 'warn' : 'bad'),
              ]),
              [4],
            ),
      ),
    );
    if (body.visual !== null) {
      children.push(
        section(
          'Visual refresh',
          body.visual.length === 0
            ? el('p', { className: 'muted' }, 'Not re-read yet.')
            : table(
                ['When', 'Outcome', 'Status', 'Diffs', 'Error', 'Event'],
                body.visual.map((v) => [
                  timeEl(v.at, false),
                  v.outcome,
                  v.status ?? '—',
                  v.summary
                    ? `${v.summary.unapproved} unapproved, ${v.summary.approved} approved, ${v.summary.rejected} rejected, ${v.summary.equal} equal`
                    : '—',
                  v.error ?? '',
                  v.eventId ? pageLink(deliveryHash(v.eventId), v.eventId) : '',
                ]),
                [4, 5],
              ),
        ),
      );
    }
    const pre = el('pre', { className: 'body', attrs: { tabindex: '0' } });
    pre.textContent = body.pretty ?? body.body;
    const raw = el('button', { attrs: { type: 'button' } }, 'Show as received');
    raw.addEventListener('click', () => {
      const showingRaw = raw.dataset.raw === '1';
      pre.textContent = showingRaw ? (body.pretty ?? body.body) : body.body;
      raw.dataset.raw = showingRaw ? '0' : '1';
      raw.textContent = showingRaw ? 'Show as received' : 'Show pretty-printed';
    });
    children.push(section('Body', el('p', { className: 'muted small' }, body.pretty ? 'Pretty-printed; ' : '', raw), pre));
    if (body.extra) {
      const extra = el('pre', { className: 'body' });
      extra.textContent = body.extra;
      children.push(section("The relay's own facts", extra));
    }
  } else {
    const r = body.request;
    children.push(
      facts([
        ['Received', timeEl(item.receivedAt, false)],
        ['Route', item.route ?? 'none (no route has this path)'],
        ['Answer', `${r.status} ${r.code}`],
        ['Reason', r.reason],
        ['Size', `${r.bytes} bytes`],
        ['From', r.source],
        ['Signature', r.signature ? el('span', { className: 'mono' }, r.signature) : 'none'],
        ['Repository', r.repo],
        ['Duplicate of', r.duplicateOf ? pageLink(deliveryHash(r.duplicateOf), r.duplicateOf) : null],
        ...eventFacts(item.event),
      ]),
    );
    if (r.issues.length > 0)
      children.push(
        section(
          'Fields at fault',
          table(
            ['Field', 'Problem'],
            r.issues.map((i) => [el('span', { className: 'mono' }, i.field), i.message]),
          ),
        ),
      );
    children.push(el('p', { className: 'muted small' }, 'The relay keeps no body of a request it did not store, and never a whole signature.'));
  }
  view.replaceChildren(...children);
}

/** The list filters last shown, so "← Deliveries" returns to them. */
let savedFilters = { outcome: '', route: '', kind: '', repo: '', q: '' };

function requeueRouteAction(route) {
  return {
    title: `Requeue every dead event of route ${route}?`,
    text: 'Each goes back in the queue, due now, and the dispatcher sends them to GitHub again.',
    ok: 'Requeue all',
    name: 'requeue-route',
    path: `/api/routes/${encodeURIComponent(route)}/requeue`,
    done: null,
  };
}

function requeueRouteButton(route) {
  return route ? actionButton(`Requeue all dead of ${route}`, 'danger', requeueRouteAction(route)) : null;
}

// ------------------------------------------------------------------------------------------
// Actions: each asks first

function confirmAction(title, text, ok) {
  const dialog = byId('confirm');
  byId('confirm-title').textContent = title;
  byId('confirm-text').textContent = text;
  byId('confirm-ok').textContent = ok;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

function actionButton(label, tone, action) {
  const button = el('button', { className: tone, attrs: { type: 'button', 'data-action': action.name } }, label);
  button.addEventListener('click', () => void runAction(button, action));
  return button;
}

async function runAction(button, action) {
  if (!(await confirmAction(action.title, action.text, action.ok))) return;
  button.disabled = true;
  try {
    const { ok, body } = await api(action.path, { post: true });
    if (ok) toast(action.done ?? `Requeued ${body.count} event${body.count === 1 ? '' : 's'}.`);
    else toast(body.message ?? body.error ?? 'Refused');
    await render();
  } catch (err) {
    if (err instanceof SignedOut) return signedOut();
    toast('The relay did not answer');
  } finally {
    button.disabled = false;
  }
}

let toastTimer = null;
function toast(text) {
  const node = byId('toast');
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    node.hidden = true;
  }, 4000);
}

// ------------------------------------------------------------------------------------------
// Views, refresh

function route() {
  const hash = window.location.hash;
  const m = /^#\/d\/(.+)$/.exec(hash);
  if (m) {
    try {
      return { view: 'detail', id: decodeURIComponent(m[1]) };
    } catch {
      return { view: 'list' };
    }
  }
  return { view: 'list' };
}

async function render() {
  if (state.loading) {
    state.pending = true;
    return;
  }
  state.loading = true;
  try {
    const r = route();
    byId('list-view').hidden = r.view !== 'list';
    byId('detail-view').hidden = r.view !== 'detail';
    if (r.view === 'list') {
      savedFilters = filtersFromHash();
      await loadList();
    } else await loadDetail(r.id);
    setLive('on', 'live');
  } catch (err) {
    if (err instanceof SignedOut) return signedOut();
    setLive('off', 'offline');
  } finally {
    state.loading = false;
    if (state.pending) {
      state.pending = false;
      void render();
    }
  }
}

function setLive(tone, text) {
  const node = byId('live');
  node.className = `live ${tone}`;
  node.textContent = text;
}

async function poll() {
  if (document.hidden) {
    setLive('', 'paused');
    return;
  }
  try {
    const { ok, body } = await api('/api/changes');
    if (!ok) throw new Error('changes');
    if (body.marker !== state.marker) {
      state.marker = body.marker;
      await render();
    } else setLive('on', 'live');
  } catch (err) {
    if (err instanceof SignedOut) return signedOut();
    setLive('off', 'offline');
  }
}

function resetPages() {
  state.back = [];
  state.cursor = null;
  state.next = null;
}

async function start() {
  let session;
  try {
    session = await api('/api/session');
  } catch (err) {
    if (err instanceof SignedOut) return signedOut();
    setLive('off', 'offline');
    return;
  }
  state.session = session.body;
  byId('actor').textContent = `signed in (${state.session.actor})`;
  const routeSelect = byId('filters').elements.route;
  for (const name of state.session.routes) routeSelect.append(el('option', { attrs: { value: name } }, name));

  let typing = null;
  byId('filters').addEventListener('input', (e) => {
    const wait = e.target instanceof HTMLInputElement ? 300 : 0;
    clearTimeout(typing);
    typing = setTimeout(() => {
      resetPages();
      window.location.replace(filtersToHash(readForm()));
    }, wait);
  });
  byId('filters').addEventListener('submit', (e) => e.preventDefault());
  byId('older').addEventListener('click', () => {
    if (!state.next) return;
    state.back.push(state.cursor);
    state.cursor = state.next;
    void render();
  });
  byId('newer').addEventListener('click', () => {
    if (state.back.length === 0) return;
    state.cursor = state.back.pop();
    void render();
  });
  byId('newest').addEventListener('click', () => {
    resetPages();
    void render();
  });
  byId('requeue-route').addEventListener('click', (e) => {
    const r = filtersFromHash().route;
    if (r) void runAction(e.currentTarget, requeueRouteAction(r));
  });
  byId('signout').addEventListener('click', async () => {
    await api('/console/logout', { post: true }).catch(() => null);
    signedOut();
  });
  window.addEventListener('hashchange', () => void render());
  document.addEventListener('visibilitychange', () => void poll());
  setInterval(() => void poll(), Math.max(500, state.session.pollMs));
  setInterval(refreshTimes, 10_000);
  await render();
}

void start();
