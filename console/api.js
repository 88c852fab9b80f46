// Every call the console makes: the server's REST routes, with the credential the operator
// gave (kept in this tab's session storage, sent as a Bearer header, never in a URL).

const STORAGE_KEY = 'tool-registry.credential';

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.error ? body.error : {};
    super(detail.message || `HTTP ${status}`);
    this.status = status;
    this.code = detail.code;
    this.field = detail.field;
  }
}

let pendingCredential = null;

/** Calls a route; asks for a credential (once) when it answers 401. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: 'application/json' };
    const credential = sessionStorage.getItem(STORAGE_KEY);
    if (credential) headers.Authorization = `Bearer ${credential}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: 'omit',
      cache: 'no-store',
    });
    if (response.status === 401 && attempt < 3) {
      await askCredential(credential ? 'That key or token was refused.' : '');
      continue;
    }
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { error: { message: text } };
      }
    }
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }
}

function askCredential(problem) {
  pendingCredential ||= new Promise((resolve) => {
    const dialog = document.getElementById('credential-dialog');
    const input = document.getElementById('credential');
    document.getElementById('credential-error').textContent = problem;
    input.value = '';
    dialog.addEventListener('close', () => {
      if (input.value) sessionStorage.setItem(STORAGE_KEY, input.value.trim());
      input.value = '';
      pendingCredential = null;
      document.getElementById('sign-out').hidden = !sessionStorage.getItem(STORAGE_KEY);
      resolve();
    }, { once: true });
    dialog.showModal();
  });
  return pendingCredential;
}

export function hasCredential() {
  return Boolean(sessionStorage.getItem(STORAGE_KEY));
}

export function forgetCredential() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** A query string from the entries that have a value. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
