// The admin page of phonebook-proxy: plain JavaScript over the JSON API.
//
// Every piece of data reaches the page through textContent or an attribute value, never as
// markup. The API token (when the server has one) is asked for after a 401, kept in this
// tab's sessionStorage and sent as "Authorization: Bearer"; it is never written into the page.
'use strict';

(() => {
  const TOKEN_KEY = 'phonebook-proxy.token';
  // The mapping fields and their defaults (README "Field templates"), in the API's order.
  const FIELDS = [
    ['display_name', '{displayName|cn}'], ['first_name', '{givenName}'], ['last_name', '{sn}'],
    ['company', '{o|company}'], ['department', '{ou|department}'], ['title', '{title}'],
    ['email', '{mail}'], ['notes', '{description}'], ['business', '{telephoneNumber}'],
    ['mobile', '{mobile}'], ['home', '{homePhone}'], ['fax', '{facsimileTelephoneNumber}'],
    ['other', '{ipPhone|otherTelephone}'],
  ];
  const PHONE_KINDS = ['business', 'mobile', 'home', 'fax', 'other'];
  const RULE_KINDS = [
    ['matches', 'matches regex'], ['not_matches', 'does not match regex'],
    ['present', 'is present'], ['absent', 'is absent'], ['any', 'any of these rules'],
  ];
  const MAX_ROWS = 1000;

  const $ = (id) => document.getElementById(id);
  // Shared with editor.js (see the end of this file).
  const shared = (window.phonebookAdmin = window.phonebookAdmin || {});
  const state = {
    profiles: [], status: null, shown: '', results: new Map(), busy: new Set(), history: new Map(),
    editing: null, seq: 0, rendered: 0, pollTimer: 0, activeUntil: 0, local: 0,
  };
  // Results and busy flags are local state: each change bumps `local` so the cards redraw.
  const touched = () => { state.local += 1; };

  // ---------------------------------------------------------------------------------------
  // DOM helpers: strings always become text nodes.

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      else if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== false) el.append(c);
    }
    return el;
  }

  function notice(message, isError) {
    const n = $('notice');
    n.textContent = message;
    n.classList.toggle('error', Boolean(isError));
    n.hidden = !message;
  }

  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  // ---------------------------------------------------------------------------------------
  // API

  class ApiError extends Error {
    constructor(status, message, data) {
      super(message);
      this.status = status;
      this.data = data;
    }
  }
  class Unauthorized extends Error {}

  async function api(method, path, body) {
    // The custom header marks the request as this page's own (the server refuses changes
    // without it or a JSON body, which a cross-site form cannot send).
    const headers = { Accept: 'application/json', 'X-Requested-With': 'phonebook-proxy' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'cannot reach the server (' + e.message + ')');
    }
    if (res.status === 401) {
      askForToken(token ? 'That token was not accepted.' : '');
      throw new Unauthorized('the API needs the token');
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) {
      const message = (data && data.error) || text || res.statusText;
      throw new ApiError(res.status, message, data);
    }
    return data;
  }

  // ---------------------------------------------------------------------------------------
  // Token

  function askForToken(message) {
    clearTimeout(state.pollTimer);
    document.body.classList.add('locked');
    $('token-prompt').hidden = false;
    $('token-error').textContent = message;
    $('summary').textContent = 'API token needed';
    $('forget-token').hidden = true;
    $('token-input').focus();
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('token-input');
    const token = input.value.trim();
    input.value = '';
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token-error').textContent = '';
    state.shown = ''; // draw again even when the data did not change (the summary said "token needed")
    refresh();
  });

  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.shown = '';
    $('connectors').replaceChildren();
    $('search-results').tBodies[0].replaceChildren();
    $('search-results').hidden = true;
    $('search-status').textContent = '';
    $('search-input').value = '';
    shared.closeEditor();
    refresh();
  });

  function unlocked() {
    document.body.classList.remove('locked');
    $('token-prompt').hidden = true;
    $('forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
  }

  // ---------------------------------------------------------------------------------------
  // Connectors and status

  async function refresh() {
    const seq = ++state.seq;
    try {
      const [profiles, status] = await Promise.all([
        api('GET', '/api/v1/connectors'),
        api('GET', '/api/v1/status'),
      ]);
      unlocked();
      if (seq > state.rendered) {
        state.rendered = seq;
        state.profiles = profiles;
        state.status = status;
        render();
        // An open history follows the runs as they happen.
        for (const name of state.history.keys()) loadHistory(name);
      }
    } catch (e) {
      if (e instanceof Unauthorized) return;
      notice(e.message, true);
    }
    schedulePoll();
  }

  // Polls often while something happens (a sync running, just after an action), else slowly.
  function schedulePoll() {
    clearTimeout(state.pollTimer);
    if (document.hidden || !$('token-prompt').hidden) return;
    const running = state.status && state.status.connectors.some((c) => c.running);
    const soon = running || Date.now() < state.activeUntil;
    state.pollTimer = setTimeout(refresh, soon ? 1000 : 15000);
  }

  function active() {
    state.activeUntil = Date.now() + 20000;
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && $('token-prompt').hidden) refresh();
  });
  $('refresh').addEventListener('click', refresh);

  function render() {
    const status = state.status || { connectors: [] };
    // Re-rendering only on a change keeps focus and open details where they are.
    const key = JSON.stringify([state.profiles, status, state.local, [...state.history]]);
    if (key === state.shown) return;
    state.shown = key;
    const n = state.profiles.length;
    $('summary').textContent = `${status.entries ?? 0} entries · generation ${status.generation ?? 0}` +
      ` · ${n} connector${n === 1 ? '' : 's'}`;
    const byName = new Map(status.connectors.map((c) => [c.name, c]));
    const cards = state.profiles.map((p) => card(p, byName.get(p.name)));
    if (!cards.length) {
      cards.push(h('p', { class: 'empty', 'data-testid': 'no-connectors' },
        'No connector yet: add one with “New connector”.'));
    }
    $('connectors').replaceChildren(...cards);
  }

  function ruleText(r) {
    if (r.any && r.any.length) return 'any of (' + r.any.map(ruleText).join('; ') + ')';
    if (r.matches !== undefined) return `${r.attribute} matches ${r.matches}`;
    if (r.not_matches !== undefined) return `${r.attribute} does not match ${r.not_matches}`;
    return `${r.attribute} is ${r.present ? 'present' : 'absent'}`;
  }

  function counts(run) {
    const parts = ['fetched', 'filtered_out', 'invalid', 'created', 'updated', 'removed', 'unchanged'];
    return h('span', { class: 'counts' }, parts.map((k) => h('span', { class: 'count' },
      k.replace('_', ' ') + ' ', h('b', { 'data-testid': 'count-' + k }, String(run[k] ?? 0)))));
  }

  function card(p, s) {
    const name = p.name;
    const run = s && s.last_run;
    const busy = state.busy.has(name);
    const running = (s && s.running) || busy;
    const outcome = running ? 'running' : run ? run.outcome : 'never run';
    const profile = h('dl', { class: 'profile', 'data-testid': 'profile' },
      h('dt', {}, 'URI'), h('dd', { 'data-testid': 'uri' }, p.uri),
      h('dt', {}, 'Base DN'), h('dd', { 'data-testid': 'base-dn' }, p.base_dn || '—'),
      h('dt', {}, 'Bind'), h('dd', { 'data-testid': 'bind' },
        p.bind_dn ? `${p.bind_dn}${p.has_password ? ' (password set)' : ''}` : 'anonymous'),
      h('dt', {}, 'Filter'), h('dd', { 'data-testid': 'filter' }, h('code', {}, p.filter || '(objectClass=*)')),
      h('dt', {}, 'Mode'), h('dd', { 'data-testid': 'mode' }, p.mode || 'mirror'),
      h('dt', {}, 'Schedule'), h('dd', { 'data-testid': 'schedule' },
        (p.schedule || 'manual') + (p.schedule && p.timezone ? ` (${p.timezone})` : '')),
      h('dt', {}, 'Connection'), h('dd', { 'data-testid': 'connection' }, [
        p.uri.startsWith('ldaps:') ? 'TLS' : p.starttls ? 'StartTLS' : p.uri.startsWith('ldap:') ? 'plain LDAP' : 'file',
        p.ca_file ? `CA ${p.ca_file}` : null, p.tls_insecure ? 'certificate not checked' : null,
        `timeout ${p.timeout || '30s'}`, `page size ${p.page_size ?? 500}`,
      ].filter(Boolean).join(', ')),
      h('dt', {}, 'Identity'), h('dd', { 'data-testid': 'id-attribute' }, p.id_attribute || 'DN'),
      h('dt', {}, 'Deletion guard'), h('dd', { 'data-testid': 'max-removals' }, `at most ${p.max_removals || '10%'} per import`),
      h('dt', {}, 'Pre-filter'), h('dd', { 'data-testid': 'prefilter' },
        p.prefilter.length ? h('ul', {}, p.prefilter.map((r) => h('li', {}, h('code', {}, ruleText(r))))) : 'none'),
      h('dt', {}, 'Fields'), h('dd', {}, h('details', {}, h('summary', {}, 'field mapping'),
        h('table', { class: 'mapping' }, h('tbody', {}, Object.entries(p.fields).map(([f, t]) =>
          h('tr', {}, h('th', {}, f), h('td', {}, t ? h('code', {}, t) : h('i', {}, 'off')))))))));
    const statusList = h('dl', { class: 'status', 'data-testid': 'status' },
      h('dt', {}, 'Entries'), h('dd', { 'data-testid': 'entries' }, String(s ? s.entries : 0)),
      h('dt', {}, 'Last run'), h('dd', { 'data-testid': 'last-run' },
        run ? h('time', { datetime: run.finished_at, title: run.finished_at }, when(run.finished_at)) : 'never'),
      h('dt', {}, 'Counts'), h('dd', {}, run ? counts(run) : '—'),
      h('dt', {}, 'Last success'), h('dd', { 'data-testid': 'last-success' },
        s && s.last_success ? h('time', { datetime: s.last_success, title: s.last_success }, when(s.last_success)) : 'never'),
      s && s.consecutive_failures ? h('dt', {}, 'Failed in a row') : null,
      s && s.consecutive_failures
        ? h('dd', { class: 'error', 'data-testid': 'failure-streak' }, String(s.consecutive_failures))
        : null,
      h('dt', {}, 'Next run'), h('dd', { 'data-testid': 'next-run' },
        p.schedule ? when(s && s.next_run) : 'manual only'));
    const extra = [];
    if (run && run.outcome === 'held_back' && !running) {
      extra.push(h('div', { class: 'held-back', 'data-testid': 'held-back', role: 'alert' },
        h('strong', {}, 'Last import not applied: '),
        h('span', { 'data-testid': 'held-back-error' }, run.error || 'held back by the deletion guard'),
        h('p', {}, 'If the upstream is right and these people really left, apply the import anyway.'),
        h('div', { class: 'actions' }, h('button', {
          type: 'button', class: 'danger', 'data-testid': 'apply-anyway',
          onclick: () => applyAnyway(name, run.removed),
        }, `Apply anyway (remove ${run.removed})`))));
    } else if (run && run.outcome === 'failed' && run.error) {
      extra.push(h('p', { class: 'error', 'data-testid': 'run-error' }, run.error));
    }
    const result = state.results.get(name);
    return h('article', { class: 'connector', 'data-testid': 'connector', 'data-name': name },
      h('header', {},
        h('h3', { 'data-testid': 'name' }, name),
        p.comment ? h('span', { class: 'comment', 'data-testid': 'comment' }, p.comment) : null,
        h('span', {
          class: 'badge outcome-' + outcome.replace(' ', '-'), 'data-testid': 'outcome', 'data-outcome': outcome,
        }, outcome.replace('_', ' '))),
      h('div', { class: 'columns' }, profile, statusList),
      historyView(name),
      extra,
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'data-testid': 'test', disabled: running, onclick: () => testConnector(name) },
          busy && result && result.pending === 'test' ? 'Testing…' : 'Test'),
        h('button', { type: 'button', class: 'primary', 'data-testid': 'import', disabled: running, onclick: () => importNow(name) },
          busy && result && result.pending === 'import' ? 'Importing…' : 'Import now'),
        h('button', { type: 'button', 'data-testid': 'edit', onclick: () => shared.openEditor(p) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', 'data-testid': 'delete', onclick: () => remove(name) }, 'Delete')),
      result ? h('div', { class: 'result', 'data-testid': 'result' }, resultView(result)) : null);
  }

  // Run history: loaded when opened, and again on every refresh while it is open.
  function historyView(name) {
    const shown = state.history.get(name);
    const details = h('details', { 'data-testid': 'history', open: shown ? '' : null },
      h('summary', { 'data-testid': 'history-toggle' }, 'Run history (last 50)'));
    details.addEventListener('toggle', () => {
      if (details.open && !state.history.has(name)) loadHistory(name);
      if (!details.open && state.history.has(name)) { state.history.delete(name); }
    });
    if (!shown) return details;
    if (shown.error) {
      details.append(h('p', { class: 'error' }, shown.error));
      return details;
    }
    details.append(h('table', { class: 'history' },
      h('thead', {}, h('tr', {}, ['finished', 'outcome', 'fetched', 'created', 'updated', 'removed', 'error']
        .map((c) => h('th', {}, c)))),
      h('tbody', {}, shown.runs.map((r) => h('tr', { 'data-testid': 'history-run', 'data-outcome': r.outcome },
        h('td', {}, h('time', { datetime: r.finished_at, title: r.finished_at }, when(r.finished_at))),
        h('td', {}, r.outcome.replace('_', ' ')),
        ['fetched', 'created', 'updated', 'removed'].map((k) => h('td', {}, String(r[k] ?? 0))),
        h('td', { class: 'error' }, r.error || ''))))));
    return details;
  }

  async function loadHistory(name) {
    try {
      state.history.set(name, await api('GET', `/api/v1/connectors/${encodeURIComponent(name)}/runs`));
    } catch (e) {
      state.history.set(name, { error: e.message });
    }
    render();
  }

  // What a Test shows beside the changes: the mapped records with every field, and each
  // dropped entry with the rule or reason that dropped it — with one search box over both.
  function numbersText(list) {
    return (list || []).map((n) => n.written + (n.e164 && n.e164 !== n.written ? ` (${n.e164})` : '') +
      (n.dialable !== n.written ? ` → ${n.dialable}` : '')).join(', ');
  }

  function searchable(rows, placeholder) {
    const box = h('input', { type: 'search', placeholder, 'data-testid': 'preview-search' });
    box.addEventListener('input', () => {
      const q = box.value.trim().toLowerCase();
      for (const row of rows) row.hidden = q !== '' && !row.textContent.toLowerCase().includes(q);
    });
    return box;
  }

  function mappedView(r) {
    const kinds = ['business', 'mobile', 'home', 'fax', 'other'];
    const rows = r.mapped.map((e) => h('tr', { 'data-testid': 'mapped-row' },
      h('td', {}, e.display_name), h('td', {}, e.first_name || ''), h('td', {}, e.last_name || ''),
      h('td', {}, e.company || ''), h('td', {}, e.department || ''), h('td', {}, e.email || ''),
      h('td', {}, kinds.filter((k) => e[k] && e[k].length).map((k) => `${k}: ${numbersText(e[k])}`).join('; '))));
    const kept = r.fetched - r.filtered_out - r.invalid;
    return h('details', { class: 'mapped', 'data-testid': 'mapped', open: '' },
      h('summary', {}, `Mapped records: the first ${r.mapped.length} of ${kept}`),
      searchable(rows, 'search the mapped records'),
      h('table', { class: 'preview' },
        h('thead', {}, h('tr', {}, ['Display name', 'First name', 'Last name', 'Company', 'Department', 'Email',
          'Numbers (written, E.164 → dialable)'].map((c) => h('th', {}, c)))),
        h('tbody', {}, rows)));
  }

  function droppedView(r) {
    const rows = r.dropped.map((d) => h('tr', { 'data-testid': 'dropped-row', 'data-kind': d.kind },
      h('td', {}, d.kind.replace('_', ' ')), h('td', {}, h('code', {}, d.dn)), h('td', { 'data-testid': 'drop-reason' }, d.reason)));
    return h('details', { class: 'dropped', 'data-testid': 'dropped' },
      h('summary', {}, `Dropped: ${r.filtered_out} filtered out, ${r.invalid} invalid`),
      searchable(rows, 'search the dropped entries'),
      h('table', { class: 'preview' },
        h('thead', {}, h('tr', {}, ['Why', 'DN', 'Rule or reason'].map((c) => h('th', {}, c)))),
        h('tbody', {}, rows)));
  }

  function resultView(r) {
    if (r.pending) return h('p', { class: 'hint' }, r.pending === 'test' ? 'Testing…' : 'Importing…');
    if (r.error) return h('p', { class: 'error', 'data-testid': 'result-error' }, r.error);
    return reportView(r.report);
  }

  function reportView(r) {
    const verb = r.dry_run ? 'Test (nothing was changed)' : r.held_back ? 'Import held back' : 'Imported';
    const wrap = h('div', { class: 'report', 'data-testid': 'report' },
      h('p', { 'data-testid': 'report-summary' }, h('strong', {}, verb + ': '),
        `fetched ${r.fetched}, filtered out ${r.filtered_out}, invalid ${r.invalid}, ` +
        `${r.dry_run ? 'would create' : 'created'} ${r.created}, updated ${r.updated}, ` +
        `removed ${r.removed}, unchanged ${r.unchanged} (${r.duration_ms} ms)`));
    if (r.held_back) {
      wrap.append(h('p', { class: 'warning', 'data-testid': 'report-held-back' },
        `The deletion guard would hold this back: it removes ${r.removed} entr${r.removed === 1 ? 'y' : 'ies'}.`));
    }
    if (r.mapped) wrap.append(mappedView(r));
    if (r.dropped && r.dropped.length) wrap.append(droppedView(r));
    if (!r.changes) return wrap;
    if (r.held_back) {
      // Who would go, first: that is what to check before applying anyway.
      r.changes = [...r.changes].sort((a, b) => (a.action === 'remove' ? 0 : 1) - (b.action === 'remove' ? 0 : 1));
    }
    if (!r.changes.length) {
      wrap.append(h('p', { 'data-testid': 'no-changes' }, 'No changes.'));
      return wrap;
    }
    const rows = r.changes.slice(0, MAX_ROWS).map((c) => h('tr', {
      class: 'action-' + c.action, 'data-testid': 'preview-row', 'data-action': c.action,
    }, h('td', {}, c.action), h('td', {}, c.display_name), h('td', {}, c.numbers.join(', '))));
    wrap.append(h('table', { class: 'preview', 'data-testid': 'preview-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Action'), h('th', {}, 'Display name'), h('th', {}, 'Numbers'))),
      h('tbody', {}, rows)));
    if (r.changes.length > MAX_ROWS) {
      wrap.append(h('p', { class: 'hint' }, `… and ${r.changes.length - MAX_ROWS} more changes.`));
    }
    return wrap;
  }

  function syncError(name, e) {
    if (e.status === 409) return `A sync of ${name} is running; try again when it has finished.`;
    return e.message;
  }

  async function runSync(name, kind, query) {
    if (state.busy.has(name)) return;
    state.busy.add(name);
    state.results.set(name, { pending: kind });
    touched();
    active();
    render();
    try {
      const report = await api('POST', `/api/v1/connectors/${encodeURIComponent(name)}/sync${query}`);
      state.results.set(name, { report });
    } catch (e) {
      if (e instanceof Unauthorized) state.results.delete(name);
      else state.results.set(name, { error: syncError(name, e) });
    } finally {
      state.busy.delete(name);
      touched();
    }
    render();
    if (kind !== 'test') await refresh();
  }

  const testConnector = (name) => runSync(name, 'test', '?dry_run=true');
  const importNow = (name) => runSync(name, 'import', '');

  function applyAnyway(name, removed) {
    if (window.confirm(`Apply the held-back import of ${name}? It removes ${removed} entries.`)) {
      runSync(name, 'import', '?force=true');
    }
  }

  // Deleting takes the connector's entries out of the book at once: the confirmation says
  // how many, and above its deletion guard the server holds the delete back until confirmed
  // again.
  async function remove(name) {
    const s = state.status && state.status.connectors.find((c) => c.name === name);
    const entries = s ? s.entries : 0;
    if (!window.confirm(`Delete the connector ${name} from the configuration file? ` +
      `Its ${entries} entr${entries === 1 ? 'y leaves' : 'ies leave'} the phone book at once; they stay in the store, so adding the ` +
      'connector back under the same name brings them back.')) return;
    const path = '/api/v1/connectors/' + encodeURIComponent(name);
    try {
      try {
        await api('DELETE', path);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 409 || !e.data || !e.data.held_back) throw e;
        if (!window.confirm(`${e.message}\n\nDelete ${name} anyway and remove its ${e.data.entries} entries from the phone book?`)) {
          notice(`${name} was not deleted (held back by its deletion guard).`);
          return;
        }
        await api('DELETE', path + '?force=true');
      }
      state.results.delete(name);
      touched();
      if (state.editing === name) shared.closeEditor();
      notice(`Deleted ${name}.`);
    } catch (e) {
      if (!(e instanceof Unauthorized)) notice(e.message, true);
    }
    active();
    refresh();
  }


  // ---------------------------------------------------------------------------------------
  // Search

  $('search-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = $('search-input').value.trim();
    const table = $('search-results');
    const status = $('search-status');
    if (!q) {
      table.hidden = true;
      status.textContent = '';
      return;
    }
    try {
      const data = await api('GET', '/api/v1/entries?limit=100&q=' + encodeURIComponent(q));
      const rows = data.entries.map((e) => h('tr', { 'data-testid': 'search-row' },
        h('td', { 'data-testid': 'search-name' }, e.display_name),
        h('td', {}, e.company || ''), h('td', {}, e.department || ''),
        h('td', {}, PHONE_KINDS.flatMap((k) => (e[k] || []).map((n) =>
          h('span', { class: 'number', title: n.e164 || '' }, h('small', {}, k + ' '), n.written)))),
        h('td', {}, e.connector)));
      table.tBodies[0].replaceChildren(...rows);
      table.hidden = rows.length === 0;
      status.textContent = rows.length ? `${rows.length} found${rows.length === 100 ? ' (first 100)' : ''}.` : 'Nobody found.';
    } catch (e) {
      if (!(e instanceof Unauthorized)) status.textContent = e.message;
    }
  });

  // The connector editor (editor.js, loaded after this file) works with these and hands
  // back its openEditor and closeEditor, which the cards and the token prompt call.
  Object.assign(shared, {
    $, h, api, notice, refresh, reportView, active, touched, state, FIELDS, RULE_KINDS,
    ApiError, Unauthorized,
  });

  refresh();
})();
