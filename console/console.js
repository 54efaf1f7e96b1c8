// Shoal's operator console: one page, served by every node at /ui/ from files built into the
// binary. It reads and acts through /ui/api/ (src/wire/console.cpp) with the key the operator
// types in, kept in this tab's sessionStorage only. No framework, nothing from another origin:
// the page builds its DOM with h() (text is always set as text, never parsed as HTML) and draws
// its charts as SVG.
'use strict';

const POLL_MS = 2000;          // how often the page asks the node again
const HISTORY_MS = 10 * 60e3;  // how much of the charts' history the page keeps
const SVG = 'http://www.w3.org/2000/svg';

// ---- small helpers ----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function timeText(ms) {
  if (!ms) return '-';
  const d = new Date(ms);
  return d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

function agoText(ms) {
  if (!ms) return '';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return Math.round(s) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 129600) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}

function bytesText(n) {
  if (n === undefined || n === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}

function num(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return v.toFixed(digits);
}

function percent(v) { return v === null || v === undefined ? '–' : (v * 100).toFixed(1) + '%'; }

// ---- the session: the key, kept in this tab only ---------------------------------------------

const session = {
  get key() { return sessionStorage.getItem('shoal.key') || ''; },
  set key(v) { v ? sessionStorage.setItem('shoal.key', v) : sessionStorage.removeItem('shoal.key'); },
  get user() { return sessionStorage.getItem('shoal.user') || ''; },
  set user(v) { sessionStorage.setItem('shoal.user', v); },
  info: null,  // /ui/api/session's answer
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, body) {
  const headers = {};
  if (session.key) headers.Authorization = 'Bearer ' + session.key;
  const init = { headers, cache: 'no-store' };
  if (body !== undefined) {
    init.method = 'POST';
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('api/' + path, init);
  } catch (e) {
    throw new ApiError(0, 'the node does not answer (' + e.message + ')');
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  if (!res.ok) throw new ApiError(res.status, (json && json.error) || res.statusText);
  return json;
}

// ---- counts over time: what the charts and the list's rates are made of ----------------------

// samples: model -> version -> [{t, requests, errors, scored, top1_sum, buckets: [counts]}], oldest first.
const samples = new Map();
let bucketBounds = null;  // upper bounds in seconds (+Inf last), from the node's answer

function record(model, counts, t) {
  let versions = samples.get(model);
  if (!versions) samples.set(model, versions = new Map());
  for (const c of counts) {
    if (!bucketBounds) bucketBounds = c.buckets.map(b => (b.le === '+Inf' ? Infinity : b.le));
    let list = versions.get(c.version);
    if (!list) versions.set(c.version, list = []);
    list.push({ t, requests: c.requests, errors: c.errors, scored: c.scored,
                top1_sum: c.top1_sum, buckets: c.buckets.map(b => b.count) });
    while (list.length > 2 && list[0].t < t - HISTORY_MS) list.shift();
  }
}

// The q-quantile (0..1) of the latencies counted between two samples, in ms (the upper bound of
// the bucket it falls in, as Prometheus' histogram_quantile does without interpolation below).
function quantileMs(a, b, q) {
  const d = b.buckets.map((v, i) => v - a.buckets[i]);
  const total = d.reduce((x, y) => x + y, 0);
  if (total <= 0) return null;
  let seen = 0;
  for (let i = 0; i < d.length; ++i) {
    seen += d[i];
    if (seen >= q * total) {
      const upper = bucketBounds[i];
      const lower = i === 0 ? 0 : bucketBounds[i - 1];
      if (!Number.isFinite(upper)) return lower * 1000;
      const inside = d[i] > 0 ? (q * total - (seen - d[i])) / d[i] : 1;
      return (lower + (upper - lower) * inside) * 1000;
    }
  }
  return null;
}

// Per interval between consecutive samples: {t, rps, eps, p50, p99, conf}.
function series(list) {
  const out = [];
  for (let i = 1; i < list.length; ++i) {
    const a = list[i - 1], b = list[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) continue;
    const dr = b.requests - a.requests;
    const ds = b.scored - a.scored;
    out.push({
      t: b.t,
      rps: dr / dt,
      eps: (b.errors - a.errors) / dt,
      p50: quantileMs(a, b, 0.5),
      p99: quantileMs(a, b, 0.99),
      conf: ds > 0 ? (b.top1_sum - a.top1_sum) / ds : null,
    });
  }
  return out;
}

// model -> its last two totals (all versions together) as the list of models had them.
const totals = new Map();
const NO_COUNTS = { requests: 0, errors: 0, buckets: null };

function recordTotal(model, total, t) {
  const c = total || NO_COUNTS;
  if (total && !bucketBounds) bucketBounds = total.buckets.map(b => (b.le === '+Inf' ? Infinity : b.le));
  const list = totals.get(model) || [];
  list.push({ t, requests: c.requests, errors: c.errors, buckets: c.buckets ? c.buckets.map(b => b.count) : null });
  while (list.length > 2) list.shift();
  totals.set(model, list);
}

// A model's figures over the last interval, all versions together (the list's columns).
function latest(model) {
  const list = totals.get(model);
  if (!list || list.length < 2) return null;
  const [a, b] = list;
  const dt = (b.t - a.t) / 1000;
  if (dt <= 0) return null;
  const rps = (b.requests - a.requests) / dt;
  const eps = (b.errors - a.errors) / dt;
  const zero = b.buckets ? b.buckets.map(() => 0) : null;
  const p99 = b.buckets ? quantileMs({ buckets: a.buckets || zero }, b, 0.99) : null;
  return { rps, errRate: rps > 0 ? eps / rps : 0, p99 };
}

// ---- a line chart --------------------------------------------------------------------------

const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2'];

// lines: [{name, points: [{t, v}]}]; unit: shown on the axis.
function lineChart(title, lines, unit, fixedMax) {
  const W = 480, H = 180, L = 48, R = 10, T = 10, B = 24;
  const now = Date.now();
  const t0 = now - 5 * 60e3;
  let max = fixedMax || 0;
  for (const l of lines) for (const p of l.points) if (p.v !== null && p.t >= t0) max = Math.max(max, p.v);
  if (!fixedMax) max = max > 0 ? max * 1.15 : 1;
  const x = t => L + ((t - t0) / (now - t0)) * (W - L - R);
  const y = v => T + (1 - v / max) * (H - T - B);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
  for (let i = 0; i <= 4; ++i) {
    const v = (max * i) / 4;
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: L - 4, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' },
                 v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)));
  }
  for (let m = 0; m <= 5; ++m) {
    const t = t0 + m * 60e3;
    svg.append(s('text', { x: x(t), y: H - 6, class: 'axis', 'text-anchor': 'middle' },
                 m === 5 ? 'now' : `-${5 - m}m`));
  }
  lines.forEach((l, i) => {
    let d = '';
    let pen = false;
    for (const p of l.points) {
      if (p.t < t0 || p.v === null) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.v).toFixed(1);
      pen = true;
    }
    const color = PALETTE[i % PALETTE.length];
    if (d) svg.append(s('path', { d, fill: 'none', stroke: color, 'stroke-width': 2 }));
    // Points too: a value seen once (a burst, a version tried briefly) has no line to draw.
    for (const p of l.points) {
      if (p.t >= t0 && p.v !== null) svg.append(s('circle', { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2, fill: color }));
    }
  });
  const legend = h('div', { class: 'legend' },
    lines.map((l, i) => h('span', { class: 'key c' + (i % PALETTE.length) }, l.name)));
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title, h('span', { class: 'unit' }, unit)), svg, legend);
}

// ---- alerts (every page) --------------------------------------------------------------------

let clusterCache = null;
let modelsCache = null;

// The alive members by id and by name: a model list names holders by id, one model by name.
function aliveNodes() {
  const out = new Set();
  for (const m of clusterCache ? clusterCache.members : []) {
    if (m.status === 'alive') { out.add(m.id); out.add(m.name); }
  }
  return out;
}

function aliveCount() {
  if (!clusterCache) return null;
  return clusterCache.members.filter(m => m.status === 'alive').length;
}

// Labelled versions with fewer holders than the cluster can keep.
function underReplicated(model) {
  if (!clusterCache || !session.info) return [];
  const want = Math.min(session.info.replication_factor, aliveCount());
  const alive = aliveNodes();
  const out = [];
  for (const [version, holders] of Object.entries(model.holders || {})) {
    const live = holders.filter(hd => alive.has(hd)).length;
    if (live < want) out.push({ version: Number(version), live, want });
  }
  return out;
}

function renderAlerts() {
  const box = document.getElementById('alerts');
  box.replaceChildren();
  const add = (level, text, href) => box.append(
    h('div', { class: 'alert ' + level }, href ? h('a', { href }, text) : text));
  if (clusterCache) {
    for (const m of clusterCache.members) {
      if (m.status === 'suspect') add('warn', `Node ${m.name} is suspect (phi ${num(m.phi, 1)})`, '#/cluster');
      if (m.status === 'dead') add('bad', `Node ${m.name} is dead`, '#/cluster');
    }
  }
  if (modelsCache) {
    let n = 0;
    for (const m of modelsCache) {
      const under = underReplicated(m);
      if (under.length && n++ < 5) {
        add('warn', `${m.model}: version ${under.map(u => `${u.version} on ${u.live} of ${u.want} nodes`).join(', ')}`,
            '#/models/' + m.model);
      }
    }
    if (n > 5) add('warn', `${n - 5} more models under-replicated`, '#/models');
  }
}

// ---- pages ----------------------------------------------------------------------------------

const main = () => document.getElementById('main');
let page = null;  // {name, refresh(), model?}

function setNav(name) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === name);
  }
}

function showError(e) {
  if (e instanceof ApiError && e.status === 401) return showLogin(e.message);
  main().replaceChildren(h('p', { class: 'error' }, e.message));
}

function showLogin(why) {
  page = null;
  setNav('');
  document.getElementById('sign-out').hidden = true;
  document.getElementById('who').textContent = '';
  const input = h('input', { type: 'password', id: 'key', name: 'key', autocomplete: 'off',
                             placeholder: 'admin or tenant key', required: true });
  const form = h('form', { class: 'login', onsubmit: async ev => {
    ev.preventDefault();
    session.key = input.value.trim();
    await start();
  } },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'This node has a keys file. Type an admin key, or a tenant key to see that tenant only. ' +
             'The key stays in this browser tab (sessionStorage) and goes only to this node.'),
  why ? h('p', { class: 'error' }, why) : null,
  h('label', { class: 'field' }, 'Key', input),
  h('button', { type: 'submit' }, 'Open'));
  main().replaceChildren(form);
  input.focus();
}

// The list of models, what needs attention first.
function attention(m, figures) {
  const why = [];
  if (!('production' in m.labels)) why.push('no production version');
  if (underReplicated(m).length) why.push('under-replicated');
  if (figures && figures.rps > 0 && figures.errRate >= 0.01) why.push(percent(figures.errRate) + ' errors');
  if (m.last_move && m.last_move.automatic && Date.now() - m.last_move.time_ms < 24 * 3600e3) {
    why.push('rolled back automatically ' + agoText(m.last_move.time_ms));
  }
  if (m.trial) {
    why.push(m.trial.mode === 'watch' ? `version ${m.trial.watched} watched after its promote`
                                      : `${m.trial.mode} of version ${m.trial.version}`);
  }
  return why;
}

function modelsPage() {
  setNav('models');
  const search = h('input', { type: 'search', id: 'search', placeholder: 'Search tenant/model',
                              'aria-label': 'Search models', value: sessionStorage.getItem('shoal.search') || '' });
  const body = h('tbody');
  const count = h('span', { class: 'muted' });
  const table = h('table', { class: 'models' },
    h('thead', {}, h('tr', {}, ['Model', 'Production', 'Versions', 'Req/s', 'Errors', 'p99 ms', 'Needs attention', 'Last change']
      .map(t => h('th', {}, t)))),
    body);
  search.addEventListener('input', () => { sessionStorage.setItem('shoal.search', search.value); draw(); });
  main().replaceChildren(h('div', { class: 'toolbar' }, h('h1', {}, 'Models'), search, count),
                         h('div', { class: 'scroll' }, table));
  function draw() {
    if (!modelsCache) return;
    const q = search.value.trim().toLowerCase();
    const rows = modelsCache.filter(m => !q || m.model.toLowerCase().includes(q)).map(m => {
      const f = latest(m.model);
      return { m, f, why: attention(m, f) };
    });
    rows.sort((a, b) => (b.why.length - a.why.length) ||
                        ((b.f ? b.f.errRate : 0) - (a.f ? a.f.errRate : 0)) ||
                        ((b.f ? b.f.rps : 0) - (a.f ? a.f.rps : 0)) ||
                        a.m.model.localeCompare(b.m.model));
    count.textContent = `${rows.length} of ${modelsCache.length}`;
    body.replaceChildren(...rows.slice(0, 500).map(({ m, f, why }) => h('tr', { 'data-model': m.model, class: why.length ? 'attn' : '' },
      h('td', {}, h('a', { href: '#/models/' + m.model }, m.model)),
      h('td', { class: 'num' }, m.labels.production ? String(m.labels.production) : 'none'),
      h('td', { class: 'num' }, String(m.versions)),
      h('td', { class: 'num' }, f ? num(f.rps, 1) : '–'),
      h('td', { class: 'num' }, f ? percent(f.errRate) : '–'),
      h('td', { class: 'num' }, f && f.p99 !== null ? num(f.p99, 1) : '–'),
      h('td', {}, why.join('; ')),
      h('td', {}, m.last_move ? `${m.last_move.action} ${m.last_move.label} ${m.last_move.from}→${m.last_move.to} ${agoText(m.last_move.time_ms)}` : ''))));
    if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' },
      modelsCache.length ? 'No model matches.' : 'No models yet: push one with shoal snapshot push TENANT/MODEL FILE.')));
  }
  return { name: 'models', refresh: async () => { await loadModels(); draw(); } };
}

async function loadModels() {
  const r = await api('models');
  const t = Date.now();
  modelsCache = r.models;
  for (const m of r.models) recordTotal(m.model, m.total, t);
}

function clusterPage() {
  setNav('cluster');
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  main().replaceChildren(h('h1', {}, 'Cluster'), note,
    h('div', { class: 'scroll' }, h('table', { class: 'members' },
      h('thead', {}, h('tr', {}, ['Node', 'Status', 'Phi', 'Round trip', 'In flight', 'Models loaded',
        'Versions held', 'Free model memory', 'Served locally', 'Forwarded', 'For peers'].map(t => h('th', {}, t)))),
      body)));
  function draw() {
    if (!clusterCache) return;
    note.textContent = `${aliveCount()} of ${clusterCache.members.length} nodes alive; ` +
      `each version is kept on ${session.info.replication_factor} nodes. This page is served by ${clusterCache.node}.`;
    body.replaceChildren(...clusterCache.members.map(m => h('tr', { 'data-node': m.name, class: 'st-' + m.status },
      h('td', {}, m.name + (m.self ? ' (this node)' : '')),
      h('td', {}, h('span', { class: 'badge ' + m.status }, m.status)),
      h('td', { class: 'num' }, m.self ? '–' : num(m.phi, 2)),
      h('td', { class: 'num' }, m.rtt_ms !== null && m.rtt_ms !== undefined ? m.rtt_ms + ' ms' : '–'),
      h('td', { class: 'num' }, String(m.load.in_flight)),
      h('td', { class: 'num' }, String(m.load.loaded_models)),
      h('td', { class: 'num' }, String(m.snapshots_held)),
      h('td', { class: 'num' }, bytesText(m.load.free_model_memory)),
      h('td', { class: 'num' }, String(m.load.served_local)),
      h('td', { class: 'num' }, String(m.load.forwarded)),
      h('td', { class: 'num' }, String(m.load.served_for_peers)))));
  }
  return { name: 'cluster', refresh: async () => { draw(); } };
}

function modelPage(id) {
  setNav('models');
  const state = { model: null };
  const head = h('div');
  const charts = h('div', { class: 'charts' });
  const versions = h('div');
  const timelines = h('div');
  main().replaceChildren(head, h('h2', {}, 'Live on this node'),
    h('p', { class: 'muted' }, 'Requests this node answered or forwarded, per version, every 2 s since this page opened.'),
    charts, h('h2', {}, 'Versions'), versions, h('h2', {}, 'Label history'), timelines);

  function drawHead(m) {
    const labels = Object.entries(m.labels);
    const prod = m.labels.production ? m.labels.production.version : 0;
    const trial = m.trial;
    head.replaceChildren(
      h('div', { class: 'toolbar' }, h('h1', {}, m.model), h('a', { href: '#/models' }, '← all models')),
      h('div', { class: 'cards' },
        ...labels.map(([name, l]) => {
          const prev = l.stack.length >= 2 ? l.stack[l.stack.length - 2] : 0;
          return h('div', { class: 'card', 'data-label': name },
            h('div', { class: 'muted' }, 'label'), h('div', { class: 'big' }, `${name}: ${l.version || 'none'}`),
            h('button', { type: 'button', class: 'danger', 'data-action': 'rollback', disabled: !prev || null,
                          onclick: () => confirmRollback(m, name, prev) },
              prev ? `Roll back to ${prev}` : 'Nothing to roll back to'));
        }),
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'trial'),
          trial ? [h('div', { class: 'big' }, `${trial.mode}: version ${trial.mode === 'watch' ? trial.watched : trial.version}`),
                   h('div', {}, trial.mode === 'watch' ? `compared with version ${trial.version} until ${timeText(trial.until_ms)}; rolled back automatically if worse`
                                                       : `${percent(trial.share)} of production requests, since ${agoText(trial.started_ms)} by ${trial.by || '?'}`),
                   trial.mode !== 'watch' ? h('button', { type: 'button', 'data-action': 'stop-trial', onclick: () => confirmTrial(m, trial.mode, trial.version, true) }, 'Stop ' + trial.mode) : null]
                : h('div', { class: 'big' }, 'none'))),
      ...(prod ? [] : [h('p', { class: 'error' }, 'No production version: requests without a version fail.')]));
  }

  function drawVersions(m) {
    const prod = m.labels.production ? m.labels.production.version : 0;
    const alive = clusterCache ? aliveNodes() : null;
    // Versions production was at before (rollback --to pops down to one of these).
    const below = new Set(m.labels.production ? m.labels.production.stack.slice(0, -1) : []);
    const reports = new Map();
    for (const r of m.reports || []) reports.set(r.candidate, r);  // the latest per candidate
    const rows = [...m.snapshots].reverse().map(v => {
      const r = reports.get(v.version);
      const live = alive ? v.holders.filter(x => alive.has(x)).length : v.holders.length;
      return h('tr', { 'data-version': v.version, class: v.version === prod ? 'prod' : '' },
        h('td', { class: 'num' }, String(v.version)),
        h('td', {}, v.labels.join(', ')),
        h('td', {}, timeText(v.created_ms), h('br'), h('span', { class: 'muted' }, [v.user || v.pushed_with, v.source].filter(Boolean).join(' · '))),
        h('td', {}, v.note, Object.keys(v.tags || {}).length ? h('div', { class: 'muted' }, Object.entries(v.tags).map(([k, x]) => k + '=' + x).join(' ')) : null,
          v.metrics ? h('div', { class: 'muted' }, JSON.stringify(v.metrics).slice(0, 160)) : null),
        h('td', {}, `${v.format}, ${bytesText(v.size_bytes)}`, h('br'), h('span', { class: 'muted mono' }, v.sha256.slice(0, 12))),
        h('td', { class: 'num' }, `${live}/${v.holders.length}`),
        h('td', {}, r ? h('span', { class: r.passed ? 'ok' : 'bad' }, (r.passed ? 'passed' : 'refused') + (r.forced ? ' (forced)' : ''), h('div', { class: 'muted' }, r.verdict)) : h('span', { class: 'muted' }, 'not validated')),
        h('td', { class: 'buttons' },
          v.version !== prod && below.has(v.version)
            ? h('button', { type: 'button', class: 'danger', 'data-action': 'rollback-to', onclick: () => confirmRollback(m, 'production', v.version, true) }, 'Roll back here')
            : null,
          v.version !== prod && !below.has(v.version) ? h('button', { type: 'button', 'data-action': 'promote', onclick: () => confirmPromote(m, v.version) }, 'Promote') : null,
          v.version !== prod && !m.trial ? h('button', { type: 'button', class: 'secondary', 'data-action': 'shadow', onclick: () => confirmTrial(m, 'shadow', v.version, false) }, 'Shadow') : null,
          v.version !== prod && !m.trial ? h('button', { type: 'button', class: 'secondary', 'data-action': 'canary', onclick: () => confirmTrial(m, 'canary', v.version, false) }, 'Canary') : null));
    });
    versions.replaceChildren(h('div', { class: 'scroll' }, h('table', { class: 'versions' },
      h('thead', {}, h('tr', {}, ['Version', 'Labels', 'Pushed', 'Note, tags, metrics', 'Format', 'Holders', 'Validation', ''].map(t => h('th', {}, t)))),
      h('tbody', {}, rows))));
  }

  function drawTimelines(m) {
    timelines.replaceChildren(...Object.entries(m.labels).map(([name, l]) =>
      h('section', { class: 'timeline', 'data-label': name }, h('h3', {}, name),
        h('ol', {}, [...l.history].reverse().map(mv => h('li', { class: mv.automatic ? 'auto' : 'manual' },
          h('span', { class: 'when', title: timeText(mv.time_ms) }, agoText(mv.time_ms)),
          h('span', { class: 'what' }, `${mv.action} ${mv.from || 'none'} → ${mv.to || 'none'}`),
          h('span', { class: 'by' }, (mv.automatic ? 'automatic' : 'manual') + (mv.by ? ' · ' + mv.by : '') + (mv.forced ? ' · forced' : '')),
          mv.reason ? h('span', { class: 'why' }, mv.reason) : null))))));
  }

  function drawCharts() {
    const versionsSeen = samples.get(id);
    const lines = { rps: [], eps: [], p50: [], p99: [], conf: [] };
    if (versionsSeen) {
      for (const [version, list] of [...versionsSeen.entries()].sort((a, b) => a[0] - b[0])) {
        const ser = series(list);
        const name = version === 0 ? 'before a version' : 'v' + version;
        for (const k of Object.keys(lines)) lines[k].push({ name, points: ser.map(p => ({ t: p.t, v: p[k] })) });
      }
    }
    charts.replaceChildren(
      lineChart('Requests', lines.rps, 'per second'),
      lineChart('Errors', lines.eps, 'per second'),
      lineChart('Latency p50', lines.p50, 'ms'),
      lineChart('Latency p99', lines.p99, 'ms'),
      lineChart('Confidence', lines.conf.filter(l => l.points.some(p => p.v !== null)), 'mean top-1 score', 1));
  }

  return {
    name: 'model',
    refresh: async () => {
      const m = await api('models/' + id);
      record(id, m.counts, Date.now());
      state.model = m;
      drawHead(m);
      drawVersions(m);
      drawTimelines(m);
      drawCharts();
    },
  };
}

// ---- actions, each confirmed with what will change --------------------------------------------

function ask(title, lines, okText) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-body').replaceChildren(...lines.map(l => h('p', {}, l)));
  document.getElementById('confirm-ok').textContent = okText;
  const user = document.getElementById('confirm-user');
  user.value = session.user;
  const err = document.getElementById('confirm-error');
  err.hidden = true;
  return new Promise(resolve => {
    dlg.onclose = () => resolve(dlg.returnValue === 'ok' ? user.value.trim() : null);
    dlg.showModal();
  });
}

async function act(path, body) {
  try {
    const r = await api(path, body);
    await refresh();
    return r;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin(e.message);
    flash('bad', e.message);
    return null;
  }
}

function flash(level, text) {
  const box = document.getElementById('alerts');
  const el = h('div', { class: 'alert ' + level, 'data-flash': true }, text);
  box.prepend(el);
  setTimeout(() => el.remove(), 15000);
}

// Rolls `label` back to `to`: the previous version on its stack, or an older one (rollback --to).
async function confirmRollback(m, label, to, explicit) {
  const cur = m.labels[label] ? m.labels[label].version : 0;
  const user = await ask(`Roll back ${m.model}?`, [
    `${label}: ${cur} → ${to}`,
    'On every node, within about a second. Requests already in flight finish on the version they started on.',
  ], `Roll back to ${to}`);
  if (user === null) return;
  session.user = user;
  const r = await act(`models/${m.model}/rollback`, explicit ? { label, to, user } : { label, user });
  if (r) flash('ok', `${m.model} ${r.label}: ${r.from} → ${r.to || 'none'}`);
}

async function confirmPromote(m, version) {
  const cur = m.labels.production ? m.labels.production.version : 0;
  const user = await ask(`Promote version ${version} of ${m.model}?`, [
    `production: ${cur || 'none'} → ${version}`,
    'The validation gate runs first when the model has a validation set; a refusal changes nothing.',
  ], `Promote ${version}`);
  if (user === null) return;
  session.user = user;
  const r = await act(`models/${m.model}/promote`, { version, user });
  if (r) flash('ok', `${m.model} ${r.label}: ${r.from || 'none'} → ${r.to}` + (r.gate_note ? ` (${r.gate_note})` : ''));
}

async function confirmTrial(m, mode, version, stop) {
  let share = 0.1;
  if (!stop && mode === 'canary') {
    const typed = prompt(`Share of production requests version ${version} answers (percent)`, '5');
    if (typed === null) return;
    share = Number(typed.replace('%', '')) / 100;
    if (!(share > 0 && share <= 1)) return flash('bad', 'the share must be above 0% and at most 100%');
  }
  const user = await ask(stop ? `Stop the ${mode} of ${m.model}?` : `Start a ${mode} of version ${version}?`, [
    stop ? `${mode} of version ${version} ends; production answers every request.`
         : mode === 'shadow' ? `Version ${version} also predicts ${percent(share)} of production's requests; answers still come from production.`
                             : `Version ${version} answers ${percent(share)} of production's requests.`,
  ], stop ? 'Stop' : 'Start ' + mode);
  if (user === null) return;
  session.user = user;
  const body = stop ? { mode, stop: true, user } : { mode, version, share, user };
  if (await act(`models/${m.model}/trial`, body)) flash('ok', stop ? `${mode} stopped` : `${mode} of version ${version} started`);
}

// ---- routing and polling ---------------------------------------------------------------------

let timer = null;
let refreshing = false;
let refreshes = 0;

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    clusterCache = await api('cluster');
    // The alerts need the models too: on the other pages, every fifth time (thousands of models
    // are a large answer).
    if (page && page.name !== 'models' && (refreshes++ % 5 === 0 || !modelsCache)) await loadModels();
    if (page) await page.refresh();
    renderAlerts();
    document.body.classList.remove('stale');
  } catch (e) {
    if (e instanceof ApiError && (e.status === 0 || e.status >= 500)) {
      document.body.classList.add('stale');  // keep what is shown; say it is old
      flash('bad', e.message);
    } else {
      showError(e);
    }
  } finally {
    refreshing = false;
  }
}

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  if (hash.startsWith('models/')) page = modelPage(hash.slice(7));
  else if (hash === 'cluster') page = clusterPage();
  else page = modelsPage();
  refresh();
}

async function start() {
  try {
    session.info = await api('session');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin(session.key ? e.message : '');
    return showError(e);
  }
  const who = session.info.open ? 'open node (no keys file)'
    : session.info.admin ? `admin (${session.info.name})` : `tenant ${session.info.tenant}`;
  document.getElementById('who').textContent = `${who} · ${session.info.node}`;
  document.getElementById('sign-out').hidden = session.info.open;
  route();
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
}

window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-out').addEventListener('click', () => {
    session.key = '';
    clearInterval(timer);
    samples.clear();
    totals.clear();
    modelsCache = null;
    clusterCache = null;
    renderAlerts();
    showLogin('');
  });
  start();
});
