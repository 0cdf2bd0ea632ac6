// The API client: JSON, the session's CSRF token on every state-changing request, and
// the API's one error shape turned into an ApiError.
const BASE = '/api/v1';
let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || 'network';
    this.field = body?.field || null;
    this.retryAfter = null;
  }
}

export function setCsrf(token) { csrf = token || null; }

export async function api(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let resp;
  try {
    resp = await fetch(BASE + path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { code: 'network', message: String(e) });
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!resp.ok) {
    const err = new ApiError(resp.status, json);
    err.retryAfter = resp.headers.get('Retry-After');
    throw err;
  }
  return json;
}

export const get = (p) => api('GET', p);
export const post = (p, b = {}) => api('POST', p, b);
export const put = (p, b = {}) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

/** POSTs `body` and saves the binary answer as `filename` (the provisioning blob). */
export async function download(path, body, filename) {
  const headers = { 'Accept': 'application/octet-stream', 'Content-Type': 'application/json' };
  if (csrf) headers['X-CSRF-Token'] = csrf;
  let resp;
  try {
    resp = await fetch(BASE + path, { method: 'POST', headers, credentials: 'same-origin', body: JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { code: 'network', message: String(e) });
  }
  if (!resp.ok) {
    let json = null;
    try { json = await resp.json(); } catch { json = null; }
    throw new ApiError(resp.status, json);
  }
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return blob.size;
}
