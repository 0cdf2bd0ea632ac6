// Anxin dashboard: a small single-page app over /api/v1. No build step; plain ES modules.
// Pages: /login, / (my households today), /alerts (live queue), /households/:id,
// /contact/:id (daily-contact form), /needs, /overview, /devices.
// Data is only ever put into the page as text (never as HTML).
import { t, setLang, currentLang, locale, translateStatic } from './i18n.js';
import { get, post, put, del, setCsrf, ApiError } from './api.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const alarmBar = document.getElementById('alarm');
const soundBtn = document.getElementById('sound');
const langBtn = document.getElementById('lang');
const logoutBtn = document.getElementById('logout');
const toastEl = document.getElementById('toast');

const state = {
  me: null,            // GET /auth/me
  tz: 'Asia/Shanghai',
  today: '',
  source: null,        // EventSource
  openAlerts: new Map(), // id -> AlertView (open ones the user may see)
  heard: new Set(),    // alert ids already announced
  sound: localStorage.getItem('anxin.sound') !== 'off',
  audio: null,
  alarmTimer: null,
  render: null,        // re-render the current page
  onAlert: null,       // page hook for live alerts
  onHousehold: null,   // page hook for live tiles
};

// ---------- small helpers ----------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmtTime(ms, withDate = false) {
  if (!ms) return '—';
  const d = new Date(ms);
  const opts = { timeZone: state.tz, hour: '2-digit', minute: '2-digit', hour12: false };
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: state.tz }).format(d);
  if (withDate || day !== state.today) { opts.month = '2-digit'; opts.day = '2-digit'; }
  return new Intl.DateTimeFormat(locale(), opts).format(d);
}

function toast(msg) {
  toastEl.textContent = msg;
  toastEl.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => toastEl.classList.remove('show'), 4000);
}

function errorText(e) {
  if (e instanceof ApiError) {
    if (e.code === 'network') return t('network');
    if (e.code === 'bad_credentials') return t('bad_credentials');
    if (e.code === 'rate_limited') return t('rate_limited', { s: e.retryAfter || '60' });
    if (e.status === 401) return t('session_over');
    return t('error', { m: e.message });
  }
  return t('error', { m: String(e) });
}

function go(path) {
  if (location.pathname !== path) history.pushState({}, '', path);
  route();
}

function link(path, text, attrs = {}) {
  return h('a', { href: path, ...attrs, onclick: (ev) => { if (ev.ctrlKey || ev.metaKey) return; ev.preventDefault(); go(path); } }, text);
}

const STATUS_ICON = { alert: '▲', no_sign_of_life: '?', device_problem: '⚙', away: '⌂', well: '✓' };
const KIND_ICON = { help: '☎', fall: '⬇', gas: '♨' };

function statusBadge(status) {
  return h('span', { class: `status st-${status}`, dataset: { status } },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, STATUS_ICON[status] || '•'),
    t('st_' + status));
}

function page(title, ...content) {
  main.replaceChildren(h('h1', { text: title }), ...content);
  document.title = `${title} · ${t('brand')}`;
}

// ---------- sound ----------
function ensureAudio() {
  if (!state.audio) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) state.audio = new Ctx();
  }
  if (state.audio && state.audio.state === 'suspended') state.audio.resume().catch(() => {});
}

function beep() {
  if (!state.sound || !state.audio) return;
  const ctx = state.audio;
  const start = ctx.currentTime;
  for (let i = 0; i < 3; i++) {
    const o = ctx.createOscillator();
    const g = ctx.createGain();
    o.type = 'square';
    o.frequency.value = i % 2 ? 660 : 880;
    g.gain.setValueAtTime(0.0001, start + i * 0.35);
    g.gain.exponentialRampToValueAtTime(0.3, start + i * 0.35 + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.35 + 0.3);
    o.connect(g).connect(ctx.destination);
    o.start(start + i * 0.35);
    o.stop(start + i * 0.35 + 0.32);
  }
  if (navigator.vibrate) navigator.vibrate([300, 100, 300]);
}

function updateSoundButton() {
  soundBtn.hidden = !state.me;
  soundBtn.textContent = state.sound ? t('sound_on') : t('sound_off');
  soundBtn.setAttribute('aria-pressed', String(state.sound));
}

/** Unacknowledged alerts keep ringing (every 10 s) until someone takes them. */
function refreshAlarm() {
  const waiting = [...state.openAlerts.values()].filter(a => ['raised', 'notified'].includes(a.state));
  document.body.dataset.alarm = waiting.length ? 'on' : 'off';
  if (!waiting.length) {
    alarmBar.hidden = true;
    clearInterval(state.alarmTimer);
    state.alarmTimer = null;
    updateNavBadge();
    return;
  }
  const a = waiting[0];
  alarmBar.replaceChildren(
    h('span', { text: t('new_alert', { k: t('k_' + a.kind), h: a.household_name || a.household_id || '' }) }),
    h('span', { class: 'row' },
      h('button', { type: 'button', onclick: () => go('/alerts') }, t('view')),
      h('button', { type: 'button', onclick: () => { state.sound = false; localStorage.setItem('anxin.sound', 'off'); updateSoundButton(); } }, t('mute'))));
  alarmBar.hidden = false;
  if (!state.alarmTimer) {
    beep();
    state.alarmTimer = setInterval(beep, 10000);
  }
  updateNavBadge();
}

function updateNavBadge() {
  const a = nav.querySelector('a[data-page="alerts"]');
  if (!a) return;
  a.querySelector('.badge')?.remove();
  const n = state.openAlerts.size;
  if (n) a.append(h('span', { class: 'badge', 'aria-label': String(n) }, String(n)));
}

// ---------- live stream ----------
function connectStream() {
  if (state.source) state.source.close();
  const es = new EventSource('/api/v1/stream');
  state.source = es;
  es.addEventListener('hello', () => { document.body.dataset.live = 'on'; });
  es.addEventListener('alert', (ev) => {
    const a = JSON.parse(ev.data);
    if (a.open) state.openAlerts.set(a.id, a); else state.openAlerts.delete(a.id);
    if (a.open && !state.heard.has(a.id)) {
      state.heard.add(a.id);
      toast(t('new_alert', { k: t('k_' + a.kind), h: a.household_name || '' }));
    }
    refreshAlarm();
    state.onAlert?.(a);
  });
  es.addEventListener('household', (ev) => { state.onHousehold?.(JSON.parse(ev.data).tile); });
  es.addEventListener('resync', () => { loadOpenAlerts(); state.render?.(); });
  es.onerror = () => { document.body.dataset.live = 'off'; };
  es.onopen = () => { document.body.dataset.live = 'on'; loadOpenAlerts(); };
}

async function loadOpenAlerts() {
  try {
    const page = await get('/alerts?open=true&limit=500');
    state.openAlerts = new Map(page.items.map(a => [a.id, a]));
    page.items.forEach(a => state.heard.add(a.id));
    refreshAlarm();
  } catch { /* the next event retries */ }
}

// ---------- navigation ----------
const PAGES = {
  caseworker: ['today', 'alerts', 'needs'],
  committee_head: ['today', 'alerts', 'needs', 'overview'],
  street_supervisor: ['today', 'alerts', 'needs', 'overview'],
  technician: ['devices', 'alerts'],
  admin: ['today', 'alerts', 'needs', 'overview', 'devices'],
};
const PATHS = { today: '/', alerts: '/alerts', needs: '/needs', overview: '/overview', devices: '/devices' };

function renderNav(current) {
  if (!state.me) { nav.hidden = true; return; }
  const pages = PAGES[state.me.user.role] || [];
  nav.replaceChildren(...pages.map(p => link(PATHS[p], t('nav_' + p), {
    dataset: { page: p }, 'aria-current': p === current ? 'page' : null,
  })));
  nav.setAttribute('aria-label', t('brand'));
  nav.hidden = false;
  updateNavBadge();
}

async function route() {
  state.onAlert = null;
  state.onHousehold = null;
  state.render = null;
  const path = location.pathname;
  if (!state.me) {
    try {
      state.me = await get('/auth/me');
      setCsrf(state.me.csrf_token);
      state.tz = state.me.timezone;
      state.today = state.me.today;
      logoutBtn.hidden = false;
      updateSoundButton();
      connectStream();
    } catch (e) {
      state.me = null;
      return loginPage(e instanceof ApiError && e.status === 401 ? null : errorText(e));
    }
  }
  const role = state.me.user.role;
  const home = PAGES[role][0];
  let m;
  if (path === '/login') return go(PATHS[home]);
  if (path === '/' && home !== 'today') return go(PATHS[home]);
  const pages = {
    '/': ['today', todayPage], '/alerts': ['alerts', alertsPage], '/needs': ['needs', needsPage],
    '/overview': ['overview', overviewPage], '/devices': ['devices', devicesPage],
  };
  try {
    if (pages[path]) { renderNav(pages[path][0]); state.render = pages[path][1]; await pages[path][1](); }
    else if ((m = path.match(/^\/households\/([^/]+)$/))) { renderNav('today'); const id = decodeURIComponent(m[1]); state.render = () => householdPage(id); await householdPage(id); }
    else if ((m = path.match(/^\/contact\/([^/]+)$/))) { renderNav('today'); await contactPage(decodeURIComponent(m[1])); }
    else { renderNav(null); page(t('not_found'), h('p', { class: 'notfound', text: t('not_found') })); }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { state.me = null; return loginPage(t('session_over')); }
    page(t('error', { m: '' }), h('p', { class: 'error', text: errorText(e) }));
  }
  main.focus({ preventScroll: true });
}

// ---------- pages ----------
function loginPage(message) {
  nav.hidden = true;
  logoutBtn.hidden = true;
  soundBtn.hidden = true;
  if (location.pathname !== '/login') history.replaceState({}, '', '/login');
  const err = h('p', { class: 'error', id: 'login-error', role: 'alert', hidden: !message, text: message || '' });
  const user = h('input', { type: 'text', id: 'user_id', name: 'user_id', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const pw = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card login stack', onsubmit: async (ev) => {
    ev.preventDefault();
    ensureAudio();
    err.hidden = true;
    try {
      const r = await post('/auth/login', { user_id: user.value.trim(), password: pw.value });
      setCsrf(r.csrf_token);
      state.me = null;
      history.replaceState({}, '', '/');
      await route();
    } catch (e) {
      err.textContent = errorText(e);
      err.hidden = false;
      pw.value = '';
      pw.focus();
    }
  } },
    err,
    h('div', {}, h('label', { for: 'user_id', text: t('user_id') }), user),
    h('div', {}, h('label', { for: 'password', text: t('password') }), pw),
    h('button', { type: 'submit', id: 'login-submit' }, t('login')));
  page(t('login_title'), form);
  user.focus();
}

function tileEl(tl) {
  const bits = [];
  if (tl.open_alerts.length) bits.push(tl.open_alerts.map(a => t('k_' + a.kind)).join('、'));
  bits.push(tl.activity_today ? t('last_activity', { t: fmtTime(tl.last_activity_ms) }) : t('no_activity'));
  bits.push(tl.contacted_today ? t('contacted_today') : t('not_contacted'));
  if (tl.visit_task) bits.push(t('visit_task'));
  if (tl.mode !== 'normal') bits.push(t('mode_' + tl.mode));
  return h('li', { class: `tile st-${tl.status}`, id: `tile-${tl.id}`, dataset: { household: tl.id, status: tl.status } },
    link(`/households/${encodeURIComponent(tl.id)}`, [
      h('div', { class: 'row' }, statusBadge(tl.status),
        tl.my_role ? h('span', { class: 'pill', text: t('my_role_' + tl.my_role) }) : null),
      h('p', { class: 'name', text: tl.name }),
      h('div', { class: 'meta', text: tl.address }),
      h('div', { class: 'meta', text: bits.join(' · ') }),
    ], { class: 'tile-main' }),
    h('div', { class: 'actions' },
      link(`/contact/${encodeURIComponent(tl.id)}`, t('record_contact'), { class: 'button secondary', dataset: { action: 'contact' } }),
      tl.phone ? h('a', { class: 'button secondary', href: `tel:${tl.phone}` }, tl.phone) : null));
}

async function todayPage() {
  const pageData = await get('/households?limit=500');
  let filter = null;
  const list = h('ul', { class: 'tiles', id: 'tiles' });
  const counts = h('div', { class: 'summary', role: 'group' });
  const tiles = new Map(pageData.items.map(x => [x.id, x]));
  const order = ['alert', 'no_sign_of_life', 'device_problem', 'away', 'well'];
  const draw = () => {
    const all = [...tiles.values()].sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status)
      || (a.contacted_today - b.contacted_today) || a.id.localeCompare(b.id));
    const shown = all.filter(x => !filter || x.status === filter);
    list.replaceChildren(...shown.map(tileEl));
    if (!shown.length) list.append(h('li', { class: 'muted', text: t('no_households') }));
    counts.replaceChildren(
      h('button', { type: 'button', class: filter ? 'secondary' : '', 'aria-pressed': String(!filter), onclick: () => { filter = null; draw(); } },
        h('span', { class: 'n', text: String(all.length) }), t('all_households')),
      ...order.map(s => {
        const n = all.filter(x => x.status === s).length;
        return h('button', { type: 'button', class: `secondary st-${s}`, 'aria-pressed': String(filter === s), dataset: { count: s },
          onclick: () => { filter = filter === s ? null : s; draw(); } },
          h('span', { class: 'n', text: String(n) }), h('span', {}, h('span', { 'aria-hidden': 'true' }, STATUS_ICON[s] + ' '), t('st_' + s)));
      }));
  };
  draw();
  page(t('today_title'), counts, list);
  state.onHousehold = (tile) => { tiles.set(tile.id, tile); draw(); };
  state.onAlert = (a) => { if (a.household_id && tiles.has(a.household_id)) { /* the household event follows */ } };
}

function alertCard(a, refresh) {
  const actions = h('div', { class: 'row' });
  const busy = (fn) => async () => {
    actions.querySelectorAll('button').forEach(b => { b.disabled = true; });
    try { await fn(); } catch (e) { toast(errorText(e)); }
    await refresh();
  };
  if (a.open) {
    if (['raised', 'notified'].includes(a.state)) {
      actions.append(h('button', { type: 'button', class: 'danger', dataset: { action: 'acknowledge' },
        onclick: busy(async () => { const r = await post(`/alerts/${a.id}/acknowledge`); state.openAlerts.set(r.id, r); refreshAlarm(); toast(t('acked_ok')); }) }, t('acknowledge')));
    }
    if (['raised', 'notified', 'acknowledged'].includes(a.state)) {
      actions.append(h('button', { type: 'button', class: 'secondary', dataset: { action: 'on_the_way' },
        onclick: busy(() => post(`/alerts/${a.id}/on-the-way`)) }, t('on_the_way')));
    }
    if (a.state !== 'arrived') {
      actions.append(h('button', { type: 'button', class: 'secondary', dataset: { action: 'arrived' },
        onclick: busy(() => post(`/alerts/${a.id}/arrived`)) }, t('arrived')));
    }
    const outcomes = ['elder_ok', 'helped_on_site', 'family_handled', 'hospitalised', 'emergency_services', 'false_alarm',
      'gas_made_safe', 'device_fixed', 'battery_replaced', 'no_fault_found', 'other'];
    const sel = h('select', { id: `outcome-${a.id}`, name: 'outcome', required: true },
      h('option', { value: '', text: '—' }), ...outcomes.map(o => h('option', { value: o, text: t('oc_' + o) })));
    const note = h('textarea', { id: `note-${a.id}`, name: 'note', required: true, maxlength: '2000' });
    const err = h('p', { class: 'error', hidden: true, role: 'alert' });
    const form = h('form', { class: 'stack', hidden: true, novalidate: true, dataset: { form: 'resolve' }, onsubmit: async (ev) => {
      ev.preventDefault();
      if (!sel.value) { err.textContent = t('outcome_required'); err.hidden = false; return sel.focus(); }
      if (!note.value.trim()) { err.textContent = t('note_required'); err.hidden = false; return note.focus(); }
      try {
        await post(`/alerts/${a.id}/resolve`, { outcome: sel.value, note: note.value.trim() });
        state.openAlerts.delete(a.id); refreshAlarm(); toast(t('resolved_ok')); await refresh();
      } catch (e) { err.textContent = errorText(e); err.hidden = false; }
    } },
      h('div', {}, h('label', { for: sel.id, text: t('outcome') }), sel),
      h('div', {}, h('label', { for: note.id, text: t('note') }), note),
      err,
      h('div', { class: 'row' }, h('button', { type: 'submit', dataset: { action: 'resolve-submit' } }, t('submit')),
        h('button', { type: 'button', class: 'secondary', onclick: () => { form.hidden = true; } }, t('cancel'))));
    actions.append(h('button', { type: 'button', class: 'secondary', dataset: { action: 'resolve' },
      onclick: () => { form.hidden = false; sel.focus(); } }, t('resolve')));
    return h('li', { class: `card alert-card sev-${a.severity}`, id: `alert-${a.id}`, dataset: { alert: a.id, state: a.state, household: a.household_id || '' } },
      h('h2', {}, h('span', { 'aria-hidden': 'true' }, (KIND_ICON[a.kind] || '▲') + ' '), `${t('k_' + a.kind)} · ${t('sev_' + a.severity)}`),
      h('p', {}, a.household_id ? link(`/households/${encodeURIComponent(a.household_id)}`, `${a.household_name || a.household_id}`) : '—',
        a.household_address ? ` · ${a.household_address}` : ''),
      h('p', { class: 'muted' }, [t('raised_at', { t: fmtTime(a.raised_ms) }), ' · ', h('strong', { text: t('state_' + a.state) }),
        a.acknowledged_by ? ` · ${t('acknowledged_by', { who: a.acknowledged_by.replace(/^user:/, '') })}` : '',
        a.repeats ? ` · ${t('repeats', { n: a.repeats })}` : ''].flat()),
      actions, form);
  }
  return h('li', { class: 'card alert-card closed', dataset: { alert: a.id, state: a.state } },
    h('strong', { text: `${t('k_' + a.kind)} · ${a.household_name || a.household_id || ''}` }),
    h('p', { class: 'muted', text: `${t('state_' + a.state)} · ${fmtTime(a.closed_ms)} · ${a.outcome ? (t('oc_' + a.outcome)) : ''} ${a.outcome_note || ''}` }));
}

async function alertsPage() {
  const openList = h('ul', { class: 'alerts', id: 'alert-list' });
  const closedList = h('ul', { class: 'alerts', id: 'closed-list' });
  const refresh = async () => {
    const [open, closed] = await Promise.all([get('/alerts?open=true&limit=200'), get('/alerts?open=false&limit=10')]);
    state.openAlerts = new Map(open.items.map(a => [a.id, a]));
    open.items.forEach(a => state.heard.add(a.id));
    refreshAlarm();
    openList.replaceChildren(...open.items.map(a => alertCard(a, refresh)));
    if (!open.items.length) openList.append(h('li', { class: 'muted', id: 'no-alerts', text: t('no_alerts') }));
    closedList.replaceChildren(...closed.items.filter(a => !a.open).map(a => alertCard(a, refresh)));
  };
  page(t('alerts_title'), openList, h('h2', { text: t('closed_alerts') }), closedList);
  await refresh();
  state.onAlert = (a) => {
    // A form being filled in is not thrown away: only new or closed alerts redraw.
    const el = document.getElementById(`alert-${a.id}`);
    const editing = el && !el.querySelector('form[data-form="resolve"]')?.hidden;
    if (!editing) refresh();
  };
}

function heatMap(map) {
  const grid = h('div', { class: 'heat', role: 'img', 'aria-label': t('heatmap') });
  grid.append(h('span', {}));
  for (let hr = 0; hr < 24; hr++) grid.append(h('span', { class: 'h', text: hr % 6 === 0 ? String(hr) : '' }));
  const max = map.max || 1;
  map.days.forEach((d, i) => {
    grid.append(h('span', { class: 'd', text: d.slice(5) }));
    map.cells[i].forEach((v, hr) => {
      const c = h('span', { class: 'c', title: `${d} ${hr}:00 — ${v ?? t('no_data')}` });
      if (v) c.style.background = `rgba(11, 79, 156, ${0.15 + 0.85 * Math.min(1, v / max)})`;
      grid.append(c);
    });
  });
  const legend = h('div', { class: 'legend' }, t('less'),
    ...[0.15, 0.4, 0.7, 1].map(a => { const i = h('i'); i.style.background = `rgba(11, 79, 156, ${a})`; return i; }), t('more'));
  return h('div', {}, grid, legend);
}

function chart(container, title, series) {
  const pts = series.flatMap(s => s.points);
  if (!pts.length || !window.uPlot) { container.append(h('p', { class: 'muted', text: `${title}: ${t('no_data')}` })); return; }
  const times = [...new Set(pts.map(p => p.at_ms))].sort((a, b) => a - b);
  const idx = new Map(times.map((x, i) => [x, i]));
  const values = new Array(times.length).fill(0);
  for (const s of series) for (const p of s.points) values[idx.get(p.at_ms)] += (s.field === 'ppm' ? p.max : p.count);
  const box = h('div', { class: 'chart', role: 'img', 'aria-label': title });
  container.append(box);
  const width = Math.max(280, Math.min(container.clientWidth || 340, 900) - 12);
  // eslint-disable-next-line no-new
  new window.uPlot({
    title, width, height: 160,
    scales: { x: { time: true } },
    axes: [{ stroke: '#4a4a4a' }, { stroke: '#4a4a4a', size: 40 }],
    series: [{}, { label: title, stroke: '#0b4f9c', fill: 'rgba(11,79,156,.15)', width: 2 }],
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), state.tz),
  }, [times.map(x => x / 1000), values], box);
}

async function householdPage(id) {
  let d;
  try { d = await get(`/households/${encodeURIComponent(id)}`); } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      page(t('household_title'), h('p', { class: 'notfound', id: 'not-found', text: t('not_found') }), link('/', t('back'), { class: 'button secondary' }));
      return;
    }
    throw e;
  }
  const tl = d.tile;
  const head = h('div', { class: `card tile st-${tl.status}`, id: `detail-${tl.id}` },
    h('div', { class: 'tile-main' }, statusBadge(tl.status), h('p', { class: 'name', text: tl.name }),
      h('div', { class: 'meta', text: `${tl.address}${tl.phone ? ' · ' + tl.phone : ''}` }),
      h('div', { class: 'meta', text: `${t('mode')}: ${t('mode_' + tl.mode)}${tl.mode_until_ms ? ' → ' + fmtTime(tl.mode_until_ms, true) : ''}` })),
    h('div', { class: 'actions' },
      link(`/contact/${encodeURIComponent(id)}`, t('record_contact'), { class: 'button', dataset: { action: 'contact' } }),
      ...(tl.mode === 'normal'
        ? [['away', 'set_away'], ['hospital', 'set_hospital']]
        : [['normal', 'set_normal']]).map(([m, key]) => h('button', { type: 'button', class: 'secondary', onclick: async () => {
          try { await put(`/households/${encodeURIComponent(id)}/mode`, { mode: m, until_ms: null }); toast(t('mode_set')); await householdPage(id); } catch (e) { toast(errorText(e)); }
        } }, t(key)))));
  const info = h('dl', { class: 'kv card' },
    h('dt', { text: t('emergency') }), h('dd', {}, d.emergency_contacts.length ? d.emergency_contacts.map(c => h('div', {}, `${c.name}（${c.relation}） `, h('a', { href: `tel:${c.phone}`, text: c.phone }))) : '—'),
    h('dt', { text: t('notes') }), h('dd', { text: d.notes || '—' }));
  const timeline = h('ul', { class: 'timeline', id: 'timeline' });
  const heat = h('div', { id: 'heatmap' });
  const charts = h('div', { id: 'charts' });
  const contacts = h('div', { class: 'scroll', id: 'contacts' });
  const needs = h('ul', { class: 'alerts', id: 'needs' });
  const devices = h('div', { class: 'scroll', id: 'devices' });
  page(tl.name, head, info,
    h('h2', { text: t('timeline') }), timeline,
    h('h2', { text: t('heatmap') }), heat,
    h('h2', { text: t('charts') }), charts,
    h('h2', { text: t('contacts') }), contacts,
    h('h2', { text: t('needs') }), needs,
    h('h2', { text: t('devices') }), devices);
  const enc = encodeURIComponent(id);
  const week = Date.now() - 7 * 86400e3;
  const [tlData, heatData, door, motion, gas, cts, nds, devs] = await Promise.all([
    get(`/households/${enc}/timeline`), get(`/households/${enc}/activity?days=28`),
    get(`/households/${enc}/history?measurement=door&field=open&resolution=hour&from_ms=${Math.min(week, state.me.now_ms - 7 * 86400e3)}`),
    get(`/households/${enc}/history?measurement=motion&resolution=hour&from_ms=${Math.min(week, state.me.now_ms - 7 * 86400e3)}`),
    get(`/households/${enc}/history?measurement=gas&field=ppm&resolution=hour&from_ms=${Math.min(week, state.me.now_ms - 7 * 86400e3)}`),
    get(`/households/${enc}/contacts?limit=20`), get(`/needs?household_id=${enc}`), get(`/households/${enc}/devices`),
  ]);
  timeline.replaceChildren(...tlData.items.slice(-200).reverse().map(i => h('li', { dataset: { source: i.source } },
    h('time', { text: fmtTime(i.at_ms) }),
    h('span', { text: i.source === 'alert' ? `${t('ev_alert')}：${t('k_' + i.kind)}` : i.source === 'contact' ? `${t('ev_contact')}：${t('m_' + i.kind)} · ${t('o_' + i.detail.outcome)}` : `${t('ev_' + i.kind) || i.kind}${i.room ? ' · ' + i.room : ''}` }))));
  if (!tlData.items.length) timeline.append(h('li', { class: 'muted', text: t('no_data') }));
  heat.append(heatMap(heatData));
  chart(charts, t('chart_door'), door.series.filter(s => s.field === 'open'));
  chart(charts, t('chart_motion'), motion.series);
  chart(charts, t('chart_gas'), gas.series);
  contacts.append(cts.items.length ? h('table', {}, h('tbody', {}, ...cts.items.map(c => h('tr', {},
    h('td', { text: fmtTime(c.at_ms, true) }), h('td', { text: `${t('m_' + c.method)} · ${t('o_' + c.outcome)}` }), h('td', { text: c.note || '' }))))) : h('p', { class: 'muted', text: t('no_data') }));
  needs.replaceChildren(...nds.items.map(n => h('li', { class: 'card' }, `${t('c_' + n.category)}：${n.description}`)));
  if (!nds.items.length) needs.append(h('li', { class: 'muted', text: t('no_needs') }));
  devices.append(deviceTable(devs));
  state.onHousehold = (tile) => { if (tile.id === id) { const b = head.querySelector('.status'); b.replaceWith(statusBadge(tile.status)); head.className = `card tile st-${tile.status}`; } };
}

function deviceTable(devs) {
  if (!devs.length) return h('p', { class: 'muted', text: t('no_devices') });
  return h('table', {}, h('thead', {}, h('tr', {}, ...['devices', 'battery', 'signal', 'last_seen', 'problems'].map(k => h('th', { text: t(k) })))),
    h('tbody', {}, ...devs.map(d => h('tr', { dataset: { device: d.id } },
      h('td', {}, h('div', { text: d.id }), h('div', { class: 'muted', text: `${d.kind}${d.room ? ' · ' + d.room : ''}` })),
      h('td', { text: d.battery_pct != null ? `${d.battery_pct}%` : '—' }),
      h('td', { text: d.rssi_dbm != null ? `${d.rssi_dbm} dBm` : '—' }),
      h('td', { text: fmtTime(d.last_seen_ms, true) }),
      h('td', {}, d.problems.length ? d.problems.map(p => h('span', { class: 'pill bad', text: t('p_' + p) })) : h('span', { class: 'pill ok', text: '✓' }))))));
}

function choices(name, values, prefix) {
  return h('div', { class: 'choices' }, ...values.map((v, i) => h('label', {},
    h('input', { type: 'radio', name, value: v, required: i === 0 }), t(prefix + v))));
}

async function contactPage(id) {
  let d;
  try { d = await get(`/households/${encodeURIComponent(id)}`); } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      page(t('contact_title'), h('p', { class: 'notfound', id: 'not-found', text: t('not_found') }));
      return;
    }
    throw e;
  }
  const err = h('p', { class: 'error', hidden: true, role: 'alert' });
  const note = h('textarea', { id: 'contact-note', name: 'note', maxlength: '4000' });
  const cat = h('select', { id: 'need-category', name: 'need_category' }, h('option', { value: '', text: '—' }),
    ...['medicine', 'food', 'repair', 'escort_to_hospital', 'other'].map(c => h('option', { value: c, text: t('c_' + c) })));
  const desc = h('input', { type: 'text', id: 'need-description', name: 'need_description', maxlength: '2000' });
  const form = h('form', { class: 'stack', id: 'contact-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const body = { household_id: id, method: fd.get('method'), outcome: fd.get('outcome'), note: note.value.trim(), needs: [] };
    if (cat.value && desc.value.trim()) body.needs.push({ category: cat.value, description: desc.value.trim() });
    try {
      const r = await post('/contacts', body);
      toast(r.visit_task_id ? t('visit_task_made') : t('contact_saved'));
      go('/');
    } catch (e) { err.textContent = errorText(e); err.hidden = false; }
  } },
    h('fieldset', {}, h('legend', { text: t('method') }), choices('method', ['phone', 'wechat', 'visit'], 'm_')),
    h('fieldset', {}, h('legend', { text: t('contact_outcome') }), choices('outcome', ['well', 'needs_help', 'no_answer', 'not_home'], 'o_')),
    h('div', {}, h('label', { for: 'contact-note', text: t('note') }), note),
    h('fieldset', {}, h('legend', { text: t('add_need') }),
      h('label', { for: 'need-category', text: t('need_category') }), cat,
      h('label', { for: 'need-description', text: t('need_description') }), desc),
    err,
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'contact-submit' }, t('save')),
      link(`/households/${encodeURIComponent(id)}`, t('cancel'), { class: 'button secondary' })));
  page(t('contact_title'), h('p', {}, statusBadge(d.tile.status), ' ', h('strong', { text: d.tile.name }), ` · ${d.tile.address}`), form);
}

async function needsPage() {
  const list = h('ul', { class: 'alerts', id: 'need-list' });
  const refresh = async () => {
    const p = await get('/needs?limit=200');
    list.replaceChildren(...p.items.map(n => {
      const note = h('input', { type: 'text', 'aria-label': t('note'), placeholder: t('note') });
      const act = (what) => async () => {
        if (!note.value.trim()) { note.focus(); return toast(t('note_required')); }
        try { await post(`/needs/${n.id}/${what}`, { note: note.value.trim() }); toast(t('need_done')); await refresh(); } catch (e) { toast(errorText(e)); }
      };
      return h('li', { class: 'card stack', dataset: { need: n.id } },
        h('div', {}, h('strong', { text: `${t('c_' + n.category)}：${n.description}` })),
        h('div', { class: 'muted' }, link(`/households/${encodeURIComponent(n.household_id)}`, n.household_name || n.household_id),
          n.due_ms ? ` · ${t('due', { t: fmtTime(n.due_ms, true) })}` : '', n.assignee_id ? ` · ${t('assignee', { u: n.assignee_id })}` : ''),
        note,
        h('div', { class: 'row' }, h('button', { type: 'button', onclick: act('fulfil') }, t('fulfil')),
          h('button', { type: 'button', class: 'secondary', onclick: act('cancel') }, t('cancel_need'))));
    }));
    if (!p.items.length) list.append(h('li', { class: 'muted', text: t('no_needs') }));
  };
  page(t('needs_title'), list);
  await refresh();
}

async function overviewPage() {
  const o = await get('/overview');
  const pct = (x) => (x == null ? '—' : `${Math.round(x * 100)}%`);
  const sec = (x) => (x == null ? '—' : t('seconds', { n: Math.round(x) }));
  const table = h('table', { id: 'overview-table' },
    h('thead', {}, h('tr', {}, ...['committee', 'households', 'coverage_today', 'open_alerts', 'escalations', 'ack_median', 'ack_p90', 'ack_60', 'coverage_7d'].map(k => h('th', { scope: 'col', text: t(k) })))),
    h('tbody', {}, ...o.committees.map(c => h('tr', { dataset: { committee: c.committee_id } },
      h('th', { scope: 'row', text: c.committee_name }), h('td', { text: String(c.households) }),
      h('td', { text: `${pct(c.coverage_today)} (${c.contacted_today}/${c.households})` }),
      h('td', { text: String(c.open_alerts) }), h('td', { class: c.open_escalations ? 'error' : '', text: String(c.open_escalations) }),
      h('td', { text: sec(c.ack_median_s) }), h('td', { text: sec(c.ack_p90_s) }), h('td', { text: pct(c.share_ack_60s) }), h('td', { text: pct(c.coverage_7d) })))));
  const exports = h('div', { class: 'row' }, ...['contacts', 'alerts', 'needs', 'coverage', 'kpis'].map(k =>
    h('a', { class: 'button secondary', href: `/api/v1/exports/${k}?format=xlsx`, download: '' }, `${t('export')} · ${k}`)));
  page(t('overview_title'), h('div', { class: 'scroll card' }, table), h('h2', { text: t('export') }), exports);
}

async function devicesPage() {
  let only = false;
  const box = h('div', { id: 'device-list' });
  const toggle = h('label', { class: 'row' }, h('input', { type: 'checkbox', id: 'only-problems', onchange: (e) => { only = e.target.checked; refresh(); } }), t('only_problems'));
  const refresh = async () => {
    const p = await get(`/devices?limit=500${only ? '&problem=true' : ''}`);
    const byHouse = new Map();
    for (const d of p.items) { const k = d.household_id || '—'; if (!byHouse.has(k)) byHouse.set(k, []); byHouse.get(k).push(d); }
    box.replaceChildren(...[...byHouse.entries()].map(([hh, devs]) => {
      const status = h('p', { class: 'muted' });
      const btns = h('div', { class: 'row' });
      if (hh !== '—') {
        btns.append(
          h('button', { type: 'button', class: 'secondary', onclick: async () => {
            try { const r = await post(`/installations/${encodeURIComponent(hh)}`, { minutes: 60 }); status.textContent = t('test_running', { t: fmtTime(r.until_ms, true) }); } catch (e) { toast(errorText(e)); }
          } }, t('start_test')),
          h('button', { type: 'button', class: 'secondary', onclick: async () => {
            try { await del(`/installations/${encodeURIComponent(hh)}`); status.textContent = ''; } catch (e) { toast(errorText(e)); }
          } }, t('stop_test')));
      }
      return h('section', { class: 'card' }, h('h2', { text: `${hh} · ${devs[0].household_address || ''}` }), btns, status, h('div', { class: 'scroll' }, deviceTable(devs)));
    }));
    if (!p.items.length) box.append(h('p', { class: 'muted', text: t('no_devices') }));
  };
  page(t('devices_title'), toggle, box);
  await refresh();
}

// ---------- start ----------
function applyLang() {
  translateStatic();
  langBtn.textContent = currentLang() === 'zh' ? 'English' : '中文';
  langBtn.setAttribute('lang', currentLang() === 'zh' ? 'en' : 'zh-CN');
  updateSoundButton();
}

langBtn.addEventListener('click', () => { setLang(currentLang() === 'zh' ? 'en' : 'zh'); applyLang(); route(); });
soundBtn.addEventListener('click', () => {
  state.sound = !state.sound;
  localStorage.setItem('anxin.sound', state.sound ? 'on' : 'off');
  ensureAudio();
  updateSoundButton();
  if (state.sound) beep();
});
logoutBtn.addEventListener('click', async () => {
  try { await post('/auth/logout'); } catch { /* the session is gone anyway */ }
  state.source?.close();
  state.me = null;
  setCsrf(null);
  state.openAlerts.clear();
  refreshAlarm();
  loginPage(null);
});
document.addEventListener('click', ensureAudio, { once: true });
document.addEventListener('keydown', ensureAudio, { once: true });
window.addEventListener('popstate', route);
setLang(currentLang());
applyLang();
route();
