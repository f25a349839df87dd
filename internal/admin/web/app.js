// relaykeeper's admin dashboard. It talks to the JSON API of the same
// listener. Every piece of data goes into the page through textContent or
// an attribute set with setAttribute, never parsed as HTML: message
// headers, addresses and upstream replies are written by strangers.
'use strict';

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

// el builds an element: el('td', {class: 'x'}, 'text', child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(method, path, body) {
  const opts = {method, credentials: 'same-origin', headers: {'X-Relaykeeper-Csrf': csrfToken}};
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  // location.origin, not the page's URL: a page opened as
  // http://user:password@host/ has its credentials in its URL, and fetch()
  // refuses a URL with credentials; the browser sends them from its cache.
  const resp = await fetch(location.origin + path, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const err = new Error((data && data.error) || (resp.status + ' ' + resp.statusText));
    err.status = resp.status;
    throw err;
  }
  return data;
}

function showError(e) {
  const p = document.getElementById('error');
  if (!e) { p.hidden = true; p.textContent = ''; return; }
  p.textContent = String(e.message || e);
  p.hidden = false;
}

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function fill(tbody, rows, empty, cols) {
  tbody.replaceChildren(...rows);
  if (rows.length === 0) tbody.append(el('tr', {}, el('td', {colspan: cols, class: 'muted'}, empty)));
}

// confirmAction asks in a modal dialog and resolves to true on Confirm.
// The answer is taken from the button itself, not from the dialog's
// close event: that event is queued, and a second question asked before
// it ran (another action clicked at once) reset the returnValue it read,
// so that both actions were dropped as cancelled.
let answer = null;
function confirmAction(text) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  if (answer) answer(false); // a question still open is given up
  return new Promise(resolve => {
    answer = resolve;
    dlg.showModal();
  });
}

function answered(yes) {
  const resolve = answer;
  answer = null;
  document.getElementById('confirm').close();
  if (resolve) resolve(yes);
}

document.getElementById('confirm-ok').addEventListener('click', () => answered(true));
document.getElementById('confirm-cancel').addEventListener('click', () => answered(false));
// Escape (a close request) cancels.
document.getElementById('confirm').addEventListener('cancel', () => answered(false));

// act asks, then sends the request and reloads with after. before, if
// given, runs once the user has confirmed, ahead of the request; what it
// returns is called if the request fails.
async function act(question, method, path, body, after, before) {
  if (!await confirmAction(question)) return;
  const undo = before && before();
  try {
    await api(method, path, body);
    showError(null);
  } catch (e) {
    if (undo) undo();
    showError(e);
  }
  await Promise.all([after(), loadStatus()]);
}

// --- status line ---

async function loadStatus() {
  const st = await api('GET', '/api/status');
  const q = st.queue || {};
  const b = s => el('b', {}, s);
  // The counters since the start count messages accepted but recipients
  // delivered and bounced (notices to senders too): say so, or 2 delivered
  // of 1 accepted looks like mail sent twice, and the bounced beside the
  // queue's failed messages like the same number disagreeing.
  document.getElementById('status').replaceChildren(
    'up ', b(Math.round(st.uptime_seconds / 60) + ' min'),
    ' · queue ', b(q.ready || 0), ' ready, ', b(q.claimed || 0), ' being forwarded, ', b(q.held || 0), ' held, ',
    b(q.failed || 0), ' failed',
    // What recovery set aside is nowhere in the queue's table: say so here.
    ...(st.quarantined ? [', ', el('b', {class: 'quarantined', title: 'relaykeeper queue quarantine (docs/queue.md)'},
      st.quarantined + ' quarantined')] : []),
    ' · ', b(st.smtp_sessions), ' sessions',
    ' · since the start ', b(st.messages_accepted), ' message(s) accepted, ', b(st.messages_forwarded),
    ' recipient(s) delivered, ', b(st.messages_failed), ' bounced');
}

// --- queue ---

let shownMessage = null;
// Messages this page is deleting or has deleted: a refresh under way when
// a deletion was confirmed must not fetch them again (a 404 for a message
// the user just removed).
const deleted = new Set();

function queueParams() {
  const f = document.getElementById('queue-filter');
  const p = new URLSearchParams();
  for (const name of ['state', 'sender', 'recipient']) {
    const v = f.elements[name].value.trim();
    if (v) p.set(name, v);
  }
  return p;
}

const stateActions = {
  ready: ['hold', 'retry', 'delete'], failed: ['retry', 'hold', 'delete'], held: ['release', 'delete'],
  new: [], claimed: [],
};

// A claim whose forwarder died (a crash) is stuck until the relay's next
// start; retry and delete take it, as `relaykeeper queue retry` does. A
// damaged message (m.error: an envelope that cannot be read, a content
// file missing, several envelopes) can only be deleted: the other changes
// need the envelope and refuse it (docs/queue.md).
const actionsFor = m => m.error ? ['delete'] :
  m.stale_claim ? ['retry', 'delete'] : (stateActions[m.state] || []);

function stateLabel(m) {
  if (!m.stale_claim) return el('span', {class: 'state state-' + m.state}, m.state);
  return el('span', {class: 'state state-stale', title: 'claimed by a process that died; retry sends it now'},
    'claimed, stuck');
}

function actionButton(m, a) {
  const question = {
    hold: `Hold message ${m.id}? It will not be delivered until released.`,
    release: `Release message ${m.id}? It becomes ready for delivery.`,
    retry: `Retry message ${m.id} now?`,
    delete: `Delete message ${m.id} for good? Its sender is not told.`,
  }[a];
  const method = a === 'delete' ? 'DELETE' : 'POST';
  const path = '/api/queue/' + encodeURIComponent(m.id) + (a === 'delete' ? '' : '/' + a);
  // A deleted message's panel closes as soon as the deletion is confirmed:
  // reloading it would only fetch a 404.
  const before = a !== 'delete' ? undefined : () => {
    deleted.add(m.id);
    if (shownMessage === m.id) { shownMessage = null; document.getElementById('message').hidden = true; }
    return () => deleted.delete(m.id);
  };
  return el('button', {type: 'button', class: 'act-' + a + (a === 'delete' ? ' danger' : ''), 'data-id': m.id,
    onclick: () => act(question, method, path, undefined, loadQueue, before)}, a);
}

// queueRows bounds the rows the page shows: a backlog of tens of thousands
// of messages would otherwise be fetched and drawn whole at every refresh.
const queueRows = 500;

async function loadQueue() {
  const params = queueParams();
  params.set('limit', queueRows);
  const data = await api('GET', '/api/queue?' + params);
  const rows = data.messages.map(m => el('tr', {'data-id': m.id, 'data-state': m.state},
    el('td', {class: 'mono'}, el('a', {href: '#queue', onclick: ev => { ev.preventDefault(); showMessage(m.id); }}, m.id)),
    el('td', {}, stateLabel(m)),
    el('td', {}, fmtTime(m.arrival)),
    el('td', {class: 'text'}, m.sender === '' ? '<>' : m.sender),
    el('td', {class: 'text'}, (m.recipients || []).map(r => r.addr).join(', ')),
    el('td', {}, m.attempts),
    el('td', {class: 'reply'}, m.last_reply || m.error || ''),
    el('td', {class: 'actions'}, ...actionsFor(m).map(a => actionButton(m, a)))));
  fill(document.querySelector('#queue-table tbody'), rows, 'No messages.', 8);
  document.getElementById('queue-summary').textContent =
    `${data.requests} message(s), ${data.bytes} bytes, in ${data.spool}` +
    (data.truncated ? `; the first ${data.messages.length} shown (filter to see others)` : '');
  if (shownMessage) await showMessage(shownMessage, true);
}

// The admin's forward and unfail-all, for the whole queue.
document.getElementById('forward-now').addEventListener('click', () =>
  act('Forward now? Every message that is due is tried now, as a poll does.', 'POST', '/api/forward', undefined, loadQueue));
document.getElementById('unfail-all').addEventListener('click', () =>
  act('Retry every failed message? Each becomes ready and due now.', 'POST', '/api/unfail-all', undefined, loadQueue));

async function showMessage(id, quiet) {
  const panel = document.getElementById('message');
  if (deleted.has(id)) return;
  let m;
  try {
    m = await api('GET', '/api/queue/' + encodeURIComponent(id));
  } catch (e) {
    if (e.status === 404) { shownMessage = null; panel.hidden = true; return; }
    if (!quiet) showError(e);
    return;
  }
  if (deleted.has(id)) return; // deleted while this was loading
  shownMessage = id;
  const dl = el('dl', {});
  const row = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
  row('Id', m.id);
  row('State', m.state);
  row('Arrived', fmtTime(m.arrival));
  row('Sender', m.sender === '' ? '<>' : m.sender);
  row('Client', (m.client || '') + (m.helo ? ' (HELO ' + m.helo + ')' : ''));
  if (m.auth) row('Authenticated as', m.auth);
  row('Attempts', m.attempts);
  if (m.next_attempt) row('Next attempt', fmtTime(m.next_attempt));
  row('Last reply', m.last_reply || '');
  const rcpts = el('table', {class: 'recipients'},
    el('thead', {}, el('tr', {}, el('th', {}, 'Recipient'), el('th', {}, 'Status'), el('th', {}, 'Reply'))),
    el('tbody', {}, ...(m.recipients || []).map(r =>
      el('tr', {}, el('td', {class: 'text'}, r.addr), el('td', {}, r.status), el('td', {class: 'reply'}, r.reply || '')))));
  panel.replaceChildren(
    el('h2', {}, 'Message ', el('span', {class: 'mono'}, m.id),
      ' ', el('button', {type: 'button', onclick: () => { shownMessage = null; panel.hidden = true; }}, 'close')),
    dl, rcpts,
    el('h3', {}, 'Header'), el('pre', {id: 'message-header'}, m.header || ''),
    el('p', {}, el('a', {href: '/api/queue/' + encodeURIComponent(m.id) + '/content'}, 'the whole message as stored')));
  panel.hidden = false;
}

// --- bans and blocks ---

async function loadBans() {
  try {
    const data = await api('GET', '/api/bans');
    // b.net is what is banned: an address, or a network (an IPv6 client's /64).
    fill(document.querySelector('#bans-table tbody'), data.bans.map(b => el('tr', {'data-ip': b.net || b.ip},
      el('td', {class: 'mono'}, (b.net || b.ip) + (b.client && b.client !== b.net ? ` (client ${b.client})` : '')),
      el('td', {}, fmtTime(b.from)), el('td', {}, fmtTime(b.until)),
      // A ban of a welcomelisted address is ignored while it is listed:
      // say so, as relaykeeper bans list does.
      el('td', {class: 'text'}, b.not_applied ? el('strong', {class: 'not-applied'}, `[not applied: ${b.not_applied}]`) : null,
        b.not_applied ? ' ' : null, b.reason),
      el('td', {}, el('button', {type: 'button', class: 'danger unban', 'data-ip': b.net || b.ip,
        onclick: () => act(`Lift the ban on ${b.net || b.ip}?`, 'DELETE', '/api/bans/' + encodeURIComponent(b.net || b.ip), undefined, loadBans)},
      'remove')))), 'No client is banned.', 5);
  } catch (e) {
    fill(document.querySelector('#bans-table tbody'), [], e.message, 5);
  }
  try {
    const data = await api('GET', '/api/blocks');
    fill(document.querySelector('#blocks-table tbody'), data.blocks.map(b => el('tr', {'data-domain': b.domain},
      el('td', {class: 'mono'}, b.domain), el('td', {}, b.action), el('td', {class: 'text'}, b.reason || '(by hand)'),
      el('td', {}, el('button', {type: 'button', class: 'danger unblock', 'data-domain': b.domain,
        onclick: () => act(`Remove ${b.domain} from the sender access table?`, 'DELETE',
          '/api/blocks/' + encodeURIComponent(b.domain), undefined, loadBans)}, 'remove')))),
    'No sender domain is blocked.', 4);
  } catch (e) {
    fill(document.querySelector('#blocks-table tbody'), [], e.message, 4);
  }
}

// --- the enforcer's actions ---

async function loadActions() {
  const data = await api('GET', '/api/actions');
  fill(document.querySelector('#actions-table tbody'), data.actions.map(a => {
    const f = Object.fromEntries(a.fields.map(x => [x.key, x.value]));
    const subject = f.client && f.domain ? f.domain + ' (client ' + f.client + ')' : f.domain || f.client || f.id || '';
    const rest = a.fields.filter(x => !['reply', 'client', 'domain'].includes(x.key)).map(x => x.key + '=' + x.value).join(' ');
    return el('tr', {'data-event': a.event}, el('td', {}, fmtTime(a.time)), el('td', {}, a.event),
      el('td', {class: 'mono'}, subject), el('td', {class: 'reply'}, f.reply || ''), el('td', {class: 'text mono'}, rest));
  }), 'No actions since the relay started.', 5);
}

// --- destinations and rates ---

// rateRows bounds the rows of the rates table: up to 10,000 clients an hour
// are kept, for 24 hours.
const rateRows = 500;

async function loadRates() {
  const p = await api('GET', '/api/paces');
  fill(document.querySelector('#paces-table tbody'), p.paces.map(x => el('tr', {'data-destination': x.destination},
    el('td', {class: 'mono'}, x.destination), el('td', {}, x.verdict), el('td', {}, x.concurrency),
    el('td', {}, x.delay_seconds + ' s'), el('td', {}, fmtTime(x.until)), el('td', {class: 'reply'}, x.reply || ''))),
  'Every destination at full pace.', 6);
  document.getElementById('paces-note').textContent = p.note || '';
  const r = await api('GET', '/api/rates?limit=' + rateRows);
  document.getElementById('rates-threshold').textContent =
    `An alert is raised over ${(r.threshold.rate * 100).toFixed(1)}% of at least ${r.threshold.min} replies in an hour. * is the whole relay.` +
    (r.truncated ? ` Many clients: the first ${r.rates.length} shown (the latest hours, the highest rates first).` : '');
  fill(document.querySelector('#rates-table tbody'), r.rates.map(x => el('tr', {class: x.alert ? 'alert' : ''},
    el('td', {}, fmtTime(x.hour)), el('td', {class: 'mono'}, x.client), el('td', {}, x.replies), el('td', {}, x.refused),
    el('td', {}, (x.rate * 100).toFixed(1) + '%' + (x.alert ? ' — alert' : '')))), 'No upstream replies yet.', 5);
}

// --- the plot ---

const series = ['accepted', 'delivered', 'deferred', 'bounced', 'rejected'];
const svgNS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function loadActivity() {
  const minutes = document.getElementById('activity-range').elements.minutes.value;
  const data = await api('GET', '/api/activity?minutes=' + encodeURIComponent(minutes));
  const pts = data.minutes;
  const W = 1100, H = 300, L = 44, R = 24, T = 10, B = 28;
  const top = Math.max(1, ...pts.flatMap(m => series.map(s => m[s])));
  const x = i => L + (W - L - R) * (pts.length <= 1 ? 0 : i / (pts.length - 1));
  const y = v => H - B - (H - B - T) * v / top;
  const plot = svg('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'messages per minute'});
  for (let k = 0; k <= 4; k++) {
    const v = Math.round(top * k / 4);
    plot.append(svg('line', {class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v)}),
      svg('text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end'}, v));
  }
  plot.append(svg('line', {class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B}),
    svg('line', {class: 'axis', x1: L, x2: L, y1: T, y2: H - B}));
  const step = Math.max(1, Math.round(pts.length / 6));
  pts.forEach((m, i) => {
    if (i % step === 0 || i === pts.length - 1) {
      plot.append(svg('text', {x: x(i), y: H - 8, 'text-anchor': 'middle'}, new Date(m.time).toISOString().slice(11, 16)));
    }
  });
  for (const s of series) {
    plot.append(svg('polyline', {class: 's-' + s, 'data-series': s, points: pts.map((m, i) => x(i) + ',' + y(m[s])).join(' ')}));
  }
  document.getElementById('plot').replaceChildren(plot);
  const totals = Object.fromEntries(series.map(s => [s, pts.reduce((a, m) => a + m[s], 0)]));
  document.getElementById('plot-legend').replaceChildren(...series.map(s =>
    el('span', {}, el('i', {class: 's-' + s}), `${s} ${totals[s]}`)), `(UTC, per minute, highest ${top})`);
}

// --- alerts ---

async function loadAlerts() {
  const data = await api('GET', '/api/alerts');
  const ul = document.getElementById('alerts-list');
  ul.replaceChildren(...data.alerts.map(a => el('li', {'data-cause': a.cause},
    el('span', {class: 'alert'}, a.cause), ' ', fmtTime(a.time), ': ', a.text)));
  if (data.alerts.length === 0) ul.append(el('li', {class: 'muted'}, 'No alerts since the relay started.'));
}

// --- tabs and refresh ---

const loaders = {queue: loadQueue, bans: loadBans, actions: loadActions, rates: loadRates, activity: loadActivity, alerts: loadAlerts};

function currentTab() {
  const t = location.hash.slice(1);
  return loaders[t] ? t : 'queue';
}

// refresh runs one at a time: a call while one runs makes it run once more
// when done, so that a slow listing (a large queue) never has several
// requests for it under way at once.
let refreshing = null, refreshAgain = false;

function refresh() {
  if (refreshing) { refreshAgain = true; return refreshing; }
  refreshing = refreshOnce().finally(() => {
    refreshing = null;
    if (refreshAgain) { refreshAgain = false; refresh(); }
  });
  return refreshing;
}

async function refreshOnce() {
  if (document.getElementById('confirm').open) return;
  const tab = currentTab();
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.tab === tab);
  for (const name of Object.keys(loaders)) document.getElementById('tab-' + name).hidden = name !== tab;
  try {
    await Promise.all([loadStatus(), loaders[tab]()]);
    document.body.dataset.loaded = tab;
  } catch (e) {
    showError(e);
  }
}

document.getElementById('queue-filter').addEventListener('submit', ev => { ev.preventDefault(); refresh(); });
document.getElementById('activity-range').addEventListener('change', () => refresh());
document.getElementById('ban-add').addEventListener('submit', async ev => {
  ev.preventDefault();
  const f = ev.target.elements;
  const body = {ip: f.ip.value.trim(), duration: f.duration.value.trim(), reason: f.reason.value};
  await act(`Ban ${body.ip} for ${body.duration || '4h'}?`, 'POST', '/api/bans', body, loadBans);
});
document.getElementById('block-add').addEventListener('submit', async ev => {
  ev.preventDefault();
  const f = ev.target.elements;
  const body = {domain: f.domain.value.trim(), reason: f.reason.value};
  await act(`Block mail from ${body.domain}?`, 'POST', '/api/blocks', body, loadBans);
});
window.addEventListener('hashchange', () => { showError(null); refresh(); });
// Every 5 seconds after the last refresh ended, not every 5 seconds
// whatever it takes.
async function refreshLoop() {
  await refresh();
  setTimeout(refreshLoop, 5000);
}
refreshLoop();
