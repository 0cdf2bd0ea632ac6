// Anxin dashboard: a small single-page app over /api/v1. No build step; plain ES modules.
// Pages: /login, / (my households today), /alerts (live queue), /households/:id,
// /contact/:id (daily-contact form), /needs, /overview; technicians: /devices,
// /devices/:id, /work-orders, /installations/:household (live check-offs).
// Data is only ever put into the page as text (never as HTML).
import { t, setLang, currentLang, locale, translateStatic } from './i18n.js';
import { get, post, put, del, download, setCsrf, ApiError } from './api.js';

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
  onInstallation: null, // page hook for installation-test events (technicians)
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
  es.addEventListener('installation', (ev) => {
    const e = JSON.parse(ev.data);
    if (e.kind === 'checked_off') toast(t('test_checked', { d: e.device_id }));
    state.onInstallation?.(e);
  });
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
  technician: ['devices', 'work_orders', 'alerts'],
  admin: ['today', 'alerts', 'needs', 'overview', 'devices', 'work_orders'],
};
const PATHS = { today: '/', alerts: '/alerts', needs: '/needs', overview: '/overview', devices: '/devices', work_orders: '/work-orders' };

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
  state.onInstallation = null;
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
    '/work-orders': ['work_orders', workOrdersPage],
  };
  try {
    if (pages[path]) { renderNav(pages[path][0]); state.render = pages[path][1]; await pages[path][1](); }
    else if ((m = path.match(/^\/households\/([^/]+)$/))) { renderNav('today'); const id = decodeURIComponent(m[1]); state.render = () => householdPage(id); await householdPage(id); }
    else if ((m = path.match(/^\/contact\/([^/]+)$/))) { renderNav('today'); await contactPage(decodeURIComponent(m[1])); }
    else if ((m = path.match(/^\/devices\/([^/]+)$/))) { renderNav('devices'); const id = decodeURIComponent(m[1]); state.render = () => devicePage(id); await devicePage(id); }
    else if ((m = path.match(/^\/installations\/([^/]+)$/))) { renderNav('devices'); const id = decodeURIComponent(m[1]); state.render = () => installationPage(id); await installationPage(id); }
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
  for (const s of series) for (const p of s.points) values[idx.get(p.at_ms)] += (p.value ?? (s.field === 'ppm' ? p.max : p.count));
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

// ---------- technicians: devices, work orders, installation tests ----------
const KINDS = ['door', 'motion', 'help', 'gas', 'pendant'];

function kindName(k) { const s = t('kind_' + k); return s === 'kind_' + k ? k : s; }

/** Online / offline / never seen: an icon and words with the colour, never colour alone. */
function onlineBadge(d) {
  const [cls, icon, key] = d.last_seen_ms == null ? ['bad', '?', 'never_seen']
    : d.online ? ['ok', '✓', 'online'] : ['bad', '✕', 'offline'];
  return h('span', { class: `conn ${cls}`, dataset: { online: d.online ? 'yes' : 'no' } },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, icon), t(key));
}

function batteryBar(d) {
  if (d.battery_pct == null) return h('span', { class: 'muted', text: `${t('battery')} —` });
  const pct = Math.max(0, Math.min(100, d.battery_pct));
  const low = d.problems.includes('low_battery') || d.problems.includes('battery_soon');
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${pct}%`;
  const bits = [`${pct}%`];
  if (d.battery_pct_per_day != null) bits.push(t('battery_trend', { d: (Math.round(d.battery_pct_per_day * 10) / 10).toString() }));
  if (d.battery_days_left != null) bits.push(t('battery_left', { n: String(Math.round(d.battery_days_left)) }));
  return h('span', { class: 'health-item' },
    h('span', { class: `battery${low ? ' low' : ''}`, role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct), 'aria-label': `${t('battery')} ${pct}%` }, fill),
    h('span', { text: `${low ? '⚠ ' : ''}${t('battery')} ${bits.join(' · ')}` }));
}

function signalBars(d) {
  if (d.rssi_dbm == null) return h('span', { class: 'muted', text: `${t('signal')} —` });
  const r = d.rssi_dbm;
  const level = r >= -67 ? 4 : r >= -75 ? 3 : r >= -85 ? 2 : 1;
  const word = level >= 3 ? 'sig_good' : level === 2 ? 'sig_fair' : 'sig_weak';
  return h('span', { class: 'health-item' },
    h('span', { class: `signal lv-${level}`, role: 'img', 'aria-label': `${t(word)} ${r} dBm` },
      ...[1, 2, 3, 4].map(i => h('span', { class: i <= level ? 'on' : '' }))),
    h('span', { text: `${level === 1 ? '⚠ ' : ''}${t(word)} · ${r} dBm` }));
}

function problemPills(d) {
  return d.problems.length
    ? d.problems.map(p => h('span', { class: 'pill bad', dataset: { problem: p } }, h('span', { 'aria-hidden': 'true' }, '⚠ '), t('p_' + p)))
    : [h('span', { class: 'pill ok' }, h('span', { 'aria-hidden': 'true' }, '✓ '), t('no_problems'))];
}

function deviceItem(d) {
  const bad = d.last_seen_ms == null || !d.online;
  return h('li', { class: `device${bad ? ' offline' : ''}`, id: `device-${d.id}`, dataset: { device: d.id, online: d.online ? 'yes' : 'no' } },
    h('div', { class: 'row' }, onlineBadge(d),
      link(`/devices/${encodeURIComponent(d.id)}`, `${kindName(d.kind)}${d.room ? ' · ' + d.room : ''}`, { class: 'device-name' })),
    h('div', { class: 'muted', text: `${d.id}${d.firmware ? ' · ' + t('firmware') + ' ' + d.firmware : ''} · ${t('last_seen')} ${fmtTime(d.last_seen_ms, true)}` }),
    h('div', { class: 'health' }, batteryBar(d), signalBars(d)),
    (d.false_presses || d.open_work_orders.length)
      ? h('div', { class: 'muted', text: [d.false_presses ? t('false_presses_n', { n: d.false_presses }) : '', d.open_work_orders.length ? t('orders_n', { n: d.open_work_orders.length }) : ''].filter(Boolean).join(' · ') })
      : null,
    h('div', { class: 'row' }, ...problemPills(d)));
}

/** The secret, once: shown in the page only, with the blob and the flashing command. */
function secretCard(deviceId, secret) {
  const cmd = h('pre', { class: 'cmd', id: 'flash-command', hidden: true });
  const target = h('select', { id: 'flash-target' }, h('option', { value: 'esp32c3', text: 'ESP32-C3 (espflash)' }), h('option', { value: 'cortex-m', text: 'nRF52840 (probe-rs)' }));
  return h('section', { class: 'card secret-card stack', id: 'secret-card', role: 'region', 'aria-label': t('secret_once') },
    h('p', { class: 'error', text: t('secret_once') }),
    h('p', {}, h('strong', { text: `${deviceId}：` }), h('code', { id: 'new-secret', text: secret })),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'download-blob', onclick: async () => {
        try { await download(`/devices/${encodeURIComponent(deviceId)}/blob`, { secret }, `${deviceId}.bin`); toast(t('blob_saved', { f: `${deviceId}.bin` })); } catch (e) { toast(errorText(e)); }
      } }, t('download_blob'))),
    h('div', {}, h('label', { for: 'flash-target', text: t('flash_target') }), target),
    h('button', { type: 'button', class: 'secondary', onclick: async () => {
      try { const r = await get(`/devices/${encodeURIComponent(deviceId)}/flash-command?target=${target.value}`); cmd.textContent = r.command; cmd.hidden = false; } catch (e) { toast(errorText(e)); }
    } }, t('show_cmd')),
    cmd);
}

function registerForm(households, onDone) {
  const err = h('p', { class: 'error', hidden: true, role: 'alert' });
  const kind = h('select', { id: 'reg-kind', name: 'kind', required: true }, ...KINDS.map(k => h('option', { value: k, text: kindName(k) })));
  const list = h('datalist', { id: 'reg-households' }, ...households.map(x => h('option', { value: x })));
  const hh = h('input', { type: 'text', id: 'reg-household', name: 'household_id', list: 'reg-households', required: true, autocapitalize: 'none' });
  const room = h('input', { type: 'text', id: 'reg-room', name: 'room', maxlength: '64' });
  const serial = h('input', { type: 'text', id: 'reg-serial', name: 'serial', maxlength: '64', autocapitalize: 'none' });
  const id = h('input', { type: 'text', id: 'reg-id', name: 'device_id', maxlength: '32', autocapitalize: 'none' });
  const field = (el, key) => h('div', {}, h('label', { for: el.id, text: t(key) }), el);
  const form = h('form', { class: 'stack', id: 'register-form', onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      const r = await post('/devices', { kind: kind.value, household_id: hh.value.trim(), room: room.value.trim() || null, serial: serial.value.trim() || null, device_id: id.value.trim() || null });
      toast(t('registered', { d: r.device.id }));
      form.reset();
      onDone(r);
    } catch (e) { err.textContent = errorText(e); err.hidden = false; }
  } }, field(kind, 'kind'), field(hh, 'household'), list, field(room, 'room'), field(serial, 'serial'), field(id, 'device_id_opt'), err,
    h('button', { type: 'submit', id: 'register-submit' }, t('register')));
  return h('details', { class: 'card', id: 'register' }, h('summary', { text: t('register_title') }), form);
}

async function devicesPage() {
  let only = false;
  const box = h('div', { id: 'device-list' });
  const summary = h('p', { class: 'summary-line', id: 'device-summary', role: 'status' });
  const secretBox = h('div', { id: 'secret-box' });
  const toggle = h('label', { class: 'row check' }, h('input', { type: 'checkbox', id: 'only-problems', onchange: (e) => { only = e.target.checked; refresh(); } }), t('only_problems'));
  let running = new Map();
  let households = [];
  const refresh = async () => {
    const [p, tests] = await Promise.all([get(`/devices?limit=500${only ? '&problem=true' : ''}`), get('/installations')]);
    running = new Map(tests.map(x => [x.household_id, x]));
    const all = p.items;
    const off = all.filter(d => d.last_seen_ms == null || !d.online).length;
    summary.replaceChildren(t('n_devices', { n: p.total }), ' · ',
      h('span', { class: off ? 'bad-text' : '' }, off ? '✕ ' : '', t('n_offline', { n: off })), ' · ',
      t('n_problems', { n: all.filter(d => d.problems.length).length }));
    const byHouse = new Map();
    for (const d of all) { const k = d.household_id || '—'; if (!byHouse.has(k)) byHouse.set(k, []); byHouse.get(k).push(d); }
    households = [...new Set([...households, ...byHouse.keys()].filter(x => x !== '—'))];
    box.replaceChildren(...[...byHouse.entries()].map(([hh, devs]) => {
      const test = running.get(hh);
      return h('section', { class: 'card household-devices', dataset: { household: hh } },
        h('h2', { text: `${hh}${devs[0].household_address ? ' · ' + devs[0].household_address : ''}` }),
        hh !== '—' ? h('div', { class: 'row' },
          link(`/installations/${encodeURIComponent(hh)}`, test ? `▶ ${t('test_running', { t: fmtTime(test.until_ms, true) })}` : t('open_test'),
            { class: `button ${test ? '' : 'secondary'}`, dataset: { action: 'installation' } })) : null,
        h('ul', { class: 'devices' }, ...devs.map(deviceItem)));
    }));
    if (!all.length) box.append(h('p', { class: 'muted', text: t('no_devices') }));
  };
  const reg = registerForm([], (r) => {
    if (r.secret) secretBox.replaceChildren(secretCard(r.device.id, r.secret));
    refresh();
  });
  page(t('devices_title'), summary, toggle, secretBox, reg, box);
  await refresh();
  reg.querySelector('datalist').replaceChildren(...households.map(x => h('option', { value: x })));
  state.onInstallation = () => refresh();
}

async function devicePage(id) {
  let d;
  try { d = await get(`/devices/${encodeURIComponent(id)}`); } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      page(t('device_title'), h('p', { class: 'notfound', id: 'not-found', text: t('not_found') }), link('/devices', t('back'), { class: 'button secondary' }));
      return;
    }
    throw e;
  }
  const dev = d.device;
  const c = dev.credentials;
  const cred = c.state === 'active' ? t('cred_active', { g: c.generation }) : c.state === 'revoked' ? `⚠ ${t('cred_revoked')}` : t('cred_none');
  const secretBox = h('div', { id: 'secret-box' });
  const info = h('dl', { class: 'kv card' },
    h('dt', { text: t('household') }), h('dd', { text: `${dev.household_id || '—'}${dev.household_address ? ' · ' + dev.household_address : ''}` }),
    h('dt', { text: t('serial') }), h('dd', { text: dev.serial || dev.zigbee_name || '—' }),
    h('dt', { text: t('credentials') }), h('dd', { text: cred }),
    h('dt', { text: t('firmware') }), h('dd', { text: `${dev.firmware || '—'}${dev.heartbeat_s ? ' · ' + t('heartbeat_every', { n: dev.heartbeat_s }) : ''}` }),
    h('dt', { text: t('last_seen') }), h('dd', { text: fmtTime(dev.last_seen_ms, true) }));
  const secretIn = h('input', { type: 'password', id: 'blob-secret', autocomplete: 'off', autocapitalize: 'none' });
  const blobErr = h('p', { class: 'error', hidden: true, role: 'alert' });
  const blobForm = h('form', { class: 'stack card', onsubmit: async (ev) => {
    ev.preventDefault();
    blobErr.hidden = true;
    if (!secretIn.value.trim()) { blobErr.textContent = t('secret_needed'); blobErr.hidden = false; return secretIn.focus(); }
    try { await download(`/devices/${encodeURIComponent(id)}/blob`, { secret: secretIn.value.trim() }, `${id}.bin`); secretIn.value = ''; toast(t('blob_saved', { f: `${id}.bin` })); } catch (e) { blobErr.textContent = errorText(e); blobErr.hidden = false; }
  } }, h('div', {}, h('label', { for: 'blob-secret', text: t('secret') }), secretIn), blobErr, h('button', { type: 'submit' }, t('download_blob')));
  const actions = h('div', { class: 'row' },
    dev.household_id ? link(`/installations/${encodeURIComponent(dev.household_id)}`, t('open_test'), { class: 'button secondary' }) : null,
    h('button', { type: 'button', class: 'secondary', onclick: async () => {
      if (!window.confirm(t('confirm_rotate'))) return;
      try { const r = await post(`/devices/${encodeURIComponent(id)}/rotate`); toast(t('rotated')); secretBox.replaceChildren(secretCard(id, r.secret)); } catch (e) { toast(errorText(e)); }
    } }, t('rotate')),
    c.state === 'active' ? h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!window.confirm(t('confirm_revoke'))) return;
      try { await post(`/devices/${encodeURIComponent(id)}/revoke`); toast(t('revoked_ok')); await devicePage(id); } catch (e) { toast(errorText(e)); }
    } }, t('revoke')) : null);
  const presses = h('ul', { class: 'timeline', id: 'presses' }, ...d.presses.map(p => h('li', {}, h('time', { text: fmtTime(p.pressed_ms, true) }), h('span', { text: t('press_' + p.outcome) }))));
  if (!d.presses.length) presses.append(h('li', { class: 'muted', text: t('no_data') }));
  const charts = h('div', { id: 'battery-chart' });
  page(`${kindName(dev.kind)}${dev.room ? ' · ' + dev.room : ''}`,
    h('p', { class: 'row' }, onlineBadge(dev), h('span', { class: 'muted', text: dev.id })),
    h('div', { class: 'health card' }, batteryBar(dev), signalBars(dev), dev.false_presses ? h('span', { text: t('false_presses_n', { n: dev.false_presses }) }) : null),
    h('div', { class: 'row' }, ...problemPills(dev)),
    info, actions, secretBox,
    h('h2', { text: t('download_blob') }), blobForm,
    h('h2', { text: t('battery') }), charts,
    h('h2', { text: t('presses') }), presses,
    h('h2', { text: t('work_orders') }), orderList(d.work_orders, () => devicePage(id)),
    openOrderForm(id, () => devicePage(id)));
  chart(charts, t('battery'), [{ field: 'battery', points: d.battery_samples.map(s => ({ at_ms: s.at_ms, value: s.battery_pct })) }]);
}

function orderItem(o, refresh) {
  const note = h('input', { type: 'text', 'aria-label': t('resolution'), placeholder: t('resolution'), maxlength: '2000' });
  return h('li', { class: `card stack order${o.closed_ms ? ' closed' : ''}`, dataset: { order: String(o.id), reason: o.reason } },
    h('div', {}, h('strong', { text: `#${o.id} ${t('r_' + o.reason)}` }), ' · ', link(`/devices/${encodeURIComponent(o.device_id)}`, o.device_id)),
    h('div', { class: 'muted', text: `${o.household_id || ''}${o.household_address ? ' · ' + o.household_address : ''} · ${fmtTime(o.opened_ms, true)}` }),
    h('div', { text: o.detail }),
    o.closed_ms
      ? h('div', { class: 'muted', text: `✓ ${fmtTime(o.closed_ms, true)} · ${t('closed_by', { who: (o.closed_by || '').replace(/^user:/, ''), r: o.resolution || '' })}` })
      : h('form', { class: 'row', onsubmit: async (ev) => {
        ev.preventDefault();
        if (!note.value.trim()) { note.focus(); return toast(t('note_required')); }
        try { await post(`/work-orders/${o.id}/close`, { resolution: note.value.trim() }); toast(t('order_closed')); await refresh(); } catch (e) { toast(errorText(e)); }
      } }, note, h('button', { type: 'submit' }, t('close_order'))));
}

function orderList(orders, refresh) {
  const ul = h('ul', { class: 'alerts', id: 'order-list' }, ...orders.map(o => orderItem(o, refresh)));
  if (!orders.length) ul.append(h('li', { class: 'muted', text: t('no_work_orders') }));
  return ul;
}

function openOrderForm(deviceId, refresh) {
  const reason = h('select', { id: 'order-reason' }, ...['offline', 'low_battery', 'suspicious', 'untested'].map(r => h('option', { value: r, text: t('r_' + r) })));
  const detail = h('input', { type: 'text', id: 'order-detail', maxlength: '2000' });
  return h('details', { class: 'card' }, h('summary', { text: t('open_order') }),
    h('form', { class: 'stack', onsubmit: async (ev) => {
      ev.preventDefault();
      if (!detail.value.trim()) { detail.focus(); return toast(t('note_required')); }
      try { const o = await post('/work-orders', { device_id: deviceId, reason: reason.value, detail: detail.value.trim() }); toast(t('order_opened', { n: o.id })); await refresh(); } catch (e) { toast(errorText(e)); }
    } }, h('div', {}, h('label', { for: 'order-reason', text: t('reason') }), reason),
    h('div', {}, h('label', { for: 'order-detail', text: t('detail') }), detail), h('button', { type: 'submit' }, t('open_order'))));
}

async function workOrdersPage() {
  let all = false;
  const box = h('div', { id: 'work-orders' });
  const refresh = async () => {
    const p = await get(`/work-orders?limit=500${all ? '&open=false' : ''}`);
    box.replaceChildren(orderList(p.items, refresh));
  };
  page(t('work_orders_title'),
    h('label', { class: 'row check' }, h('input', { type: 'checkbox', id: 'show-closed', onchange: (e) => { all = e.target.checked; refresh(); } }), t('show_closed')),
    box);
  await refresh();
}

const BY = { 'door opened': 'by_door_opened', 'door closed': 'by_door_closed', motion: 'by_motion', 'help press': 'by_help_press', 'gas alarm': 'by_gas_alarm', 'fall detected': 'by_fall' };
function byText(by) { return BY[by] ? t(BY[by]) : (by || ''); }

function needsText(kind) { return KINDS.includes(kind) ? t('need_' + kind) : t('need_other'); }

async function installationPage(hh) {
  const enc = encodeURIComponent(hh);
  let v;
  try { v = await get(`/installations/${enc}`); } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      page(t('installation'), h('p', { class: 'notfound', id: 'not-found', text: t('not_found') }), link('/devices', t('back'), { class: 'button secondary' }));
      return;
    }
    throw e;
  }
  const status = h('p', { id: 'test-status', class: 'test-status' });
  const progress = h('p', { id: 'test-progress', role: 'status', 'aria-live': 'polite' });
  const list = h('ul', { class: 'checklist', id: 'install-devices' });
  const minutes = h('select', { id: 'test-minutes' }, ...[15, 30, 60, 120].map(m => h('option', { value: String(m), text: String(m), selected: m === 30 })));
  const startBtn = h('button', { type: 'button', id: 'start-test', onclick: async () => {
    try { v = await post(`/installations/${enc}`, { minutes: Number(minutes.value) }); toast(t('test_started')); draw(); } catch (e) { toast(errorText(e)); }
  } }, t('start_test'));
  const stopBtn = h('button', { type: 'button', id: 'stop-test', class: 'secondary', onclick: async () => {
    try { v = await del(`/installations/${enc}`); toast(t('test_stopped')); draw(); } catch (e) { toast(errorText(e)); }
  } }, t('stop_test'));
  const startBox = h('div', { class: 'row' }, h('label', { for: 'test-minutes', text: t('test_minutes') }), minutes, startBtn);
  const draw = () => {
    document.body.dataset.test = v.running ? 'running' : 'idle';
    status.textContent = v.running ? `▶ ${t('test_until', { t: fmtTime(v.until_ms, true) })}`
      : v.started_ms ? `✓ ${t('test_ended', { t: fmtTime(v.ended_ms, true) })}` : t('test_none');
    startBox.hidden = v.running;
    stopBtn.hidden = !v.running;
    const devs = [...v.devices].sort((a, b) => (a.tested_ms == null) - (b.tested_ms == null) || (a.tested_ms || 0) - (b.tested_ms || 0));
    const done = devs.filter(d => d.tested_ms != null).length;
    progress.textContent = v.started_ms ? t('test_progress', { a: done, b: devs.length }) : '';
    list.replaceChildren(...devs.map(d => {
      const ok = d.tested_ms != null;
      return h('li', { class: ok ? 'tested' : 'untested', id: `check-${d.device_id}`, dataset: { device: d.device_id, tested: ok ? 'yes' : 'no' } },
        h('span', { class: 'mark', 'aria-hidden': 'true' }, ok ? '✓' : '○'),
        h('div', {},
          h('strong', { text: `${kindName(d.kind)}${d.room ? ' · ' + d.room : ''}` }), ' ', h('span', { class: 'muted', text: d.device_id }),
          h('div', { text: ok ? `✓ ${t('tested_at', { t: fmtTime(d.tested_ms), by: byText(d.by) })}` : `${t('untested')}：${needsText(d.kind)}` })));
    }));
  };
  page(`${t('installation')} · ${hh}`,
    h('p', { class: 'muted', text: v.household_address || '' }),
    status, h('p', { class: 'muted', text: t('test_quiet') }),
    startBox, h('div', { class: 'row' }, stopBtn),
    progress, list,
    link('/devices', t('back'), { class: 'button secondary' }));
  draw();
  state.onInstallation = async (e) => {
    if (e.household_id !== hh) return;
    const d = e.kind === 'checked_off' && v.devices.find(x => x.device_id === e.device_id);
    if (d && v.running) {
      d.tested_ms = e.at_ms;
      d.by = e.by;
      draw();
    } else {
      try { v = await get(`/installations/${enc}`); draw(); } catch (err) { toast(errorText(err)); }
    }
  };
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
