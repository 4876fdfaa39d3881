// The connector editor of the admin page (loaded after admin.js, whose helpers it uses):
// every key of a [[connector]] table, presets, pre-filter rules, Test and Test connection.
//
// As in admin.js, every piece of data reaches the page through textContent or an attribute
// value, never as markup.
'use strict';

(() => {
  const shared = window.phonebookAdmin;
  const {
    $, h, api, notice, refresh, reportView, active, touched, state, FIELDS, RULE_KINDS,
    ApiError, Unauthorized,
  } = shared;

  const editor = $('editor');
  // Every key of a connector table: text inputs (empty leaves the key out, so its default
  // applies) and the two switches.
  const simple = {
    name: $('f-name'), comment: $('f-comment'), uri: $('f-uri'), base_dn: $('f-base-dn'),
    bind_dn: $('f-bind-dn'), filter: $('f-filter'), mode: $('f-mode'), schedule: $('f-schedule'),
    timezone: $('f-timezone'), id_attribute: $('f-id-attribute'), page_size: $('f-page-size'),
    max_removals: $('f-max-removals'), timeout: $('f-timeout'), ca_file: $('f-ca-file'),
  };
  const switches = { starttls: $('f-starttls'), tls_insecure: $('f-tls-insecure') };

  // Starting points for the usual upstreams (README "Getting started"). A preset sets what
  // differs between them and shows examples for what only the administrator knows.
  const AD_PERSON = '(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))';
  const PRESETS = {
    ad: {
      hint: 'Active Directory (README, step 3): people who are not disabled, named by objectGUID, checked ' +
        'every 15 minutes, only members of the phone book group — put your group\'s DN into the rule. ' +
        'Use ldaps:// (port 636) or StartTLS with the CA file, and a read-only service account.',
      values: {
        filter: AD_PERSON, id_attribute: 'objectGUID', page_size: '', starttls: false, schedule: '15m',
        max_removals: '10%',
      },
      placeholders: {
        uri: 'ldaps://dc1.corp.example.com', base_dn: 'OU=Staff,DC=corp,DC=example,DC=com',
        bind_dn: 'CN=svc-phonebook,OU=Service Accounts,DC=corp,DC=example,DC=com',
        ca_file: '/etc/phonebook-proxy/ad-ca.pem',
      },
      prefilter: [{ attribute: 'memberOf', matches: '(?i)^CN=Phonebook,OU=Groups,DC=corp,DC=example,DC=com$' }],
      fields: { company: '{company|o}', department: '{department|ou}' },
    },
    openldap: {
      hint: 'OpenLDAP: inetOrgPerson entries named by entryUUID, over StartTLS.',
      values: { filter: '(objectClass=inetOrgPerson)', id_attribute: 'entryUUID', page_size: '', starttls: true },
      placeholders: {
        uri: 'ldap://ldap.example.com', base_dn: 'ou=people,dc=example,dc=com',
        bind_dn: 'cn=phonebook,ou=services,dc=example,dc=com',
      },
      prefilter: [],
    },
    ldif: {
      hint: 'An LDIF export read through the same pipeline; the file must lie below [files] allowed_dirs.',
      values: { base_dn: '', bind_dn: '', filter: '', id_attribute: '', page_size: '', starttls: false },
      placeholders: { uri: 'file:/var/lib/phonebook-proxy/directory.ldif' },
      prefilter: [],
    },
  };
  const PLACEHOLDERS = Object.fromEntries(Object.entries(simple).map(([k, el]) => [k, el.placeholder]));

  function applyPreset(key) {
    for (const [k, el] of Object.entries(simple)) el.placeholder = PLACEHOLDERS[k];
    const preset = PRESETS[key];
    $('preset-hint').textContent = preset ? preset.hint : '';
    if (!preset) return;
    // What another preset set goes back to its default first: switching presets never mixes them.
    for (const other of Object.values(PRESETS)) {
      for (const k of Object.keys(other.values)) {
        if (switches[k]) switches[k].checked = false;
        else simple[k].value = '';
      }
      for (const f of Object.keys(other.fields || {})) {
        $('field-' + f).value = FIELDS.find(([name]) => name === f)[1];
      }
    }
    for (const [k, v] of Object.entries(preset.values)) {
      if (switches[k]) switches[k].checked = v;
      else simple[k].value = v;
    }
    for (const [k, v] of Object.entries(preset.placeholders)) simple[k].placeholder = v;
    if (preset.values.bind_dn === '') $('f-password').value = '';
    $('rules').replaceChildren(...preset.prefilter.map((r) => ruleRow(r, false)));
    for (const [f, template] of Object.entries(preset.fields || {})) $('field-' + f).value = template;
  }
  $('f-preset').addEventListener('change', () => applyPreset($('f-preset').value));

  function ruleRow(rule, nested) {
    const kind = rule.any && rule.any.length ? 'any'
      : rule.not_matches !== undefined ? 'not_matches'
        : rule.present === true ? 'present' : rule.present === false ? 'absent' : 'matches';
    const select = h('select', { 'data-role': 'kind', 'aria-label': 'Rule kind', 'data-testid': 'rule-kind' },
      RULE_KINDS.filter(([k]) => !nested || k !== 'any' || kind === 'any')
        .map(([k, label]) => h('option', { value: k, selected: k === kind }, label)));
    const attribute = h('input', {
      'data-role': 'attribute', 'data-testid': 'rule-attribute', 'aria-label': 'Attribute',
      placeholder: 'memberOf', autocomplete: 'off', spellcheck: 'false',
    });
    attribute.value = rule.attribute || '';
    const value = h('input', {
      'data-role': 'value', 'data-testid': 'rule-value', 'aria-label': 'Regular expression',
      placeholder: '(?i)^cn=company-phonebook,', autocomplete: 'off', spellcheck: 'false',
    });
    value.value = rule.matches ?? rule.not_matches ?? '';
    const group = h('div', { class: 'group', 'data-role': 'group' });
    for (const r of rule.any || []) group.append(ruleRow(r, true));
    const addAlternative = h('button', {
      type: 'button', 'data-role': 'add-alternative', 'data-testid': 'add-alternative',
      onclick: () => group.append(ruleRow({}, true)),
    }, 'Add alternative');
    const row = h('div', { class: 'rule', 'data-testid': 'rule' },
      h('div', { class: 'rule-line' }, attribute, select, value,
        h('button', { type: 'button', class: 'remove', 'aria-label': 'Remove rule', 'data-testid': 'remove-rule', onclick: () => row.remove() }, '✕')),
      group, addAlternative);
    const update = () => {
      const k = select.value;
      attribute.hidden = k === 'any';
      value.hidden = k !== 'matches' && k !== 'not_matches';
      group.hidden = addAlternative.hidden = k !== 'any';
      if (k === 'any' && !group.children.length) group.append(ruleRow({}, true));
    };
    select.addEventListener('change', update);
    update();
    return row;
  }

  // Reads the rule rows and labels each input with the key path the server reports errors at.
  function collectRules(container, prefix) {
    const rows = [...container.children].filter((c) => c.classList.contains('rule'));
    return rows.map((row, i) => {
      const path = `${prefix}[${i}]`;
      const q = (role) => row.querySelector(`:scope > .rule-line > [data-role="${role}"]`);
      const [select, attribute, value] = [q('kind'), q('attribute'), q('value')];
      const group = row.querySelector(':scope > [data-role="group"]');
      row.dataset.field = path;
      for (const el of [select, attribute, value]) delete el.dataset.field;
      const kind = select.value;
      if (kind === 'any') return { any: collectRules(group, path + '.any') };
      attribute.dataset.field = path + '.attribute';
      const rule = { attribute: attribute.value.trim() };
      if (kind === 'matches' || kind === 'not_matches') {
        value.dataset.field = `${path}.${kind}`;
        rule[kind] = value.value;
      } else {
        select.dataset.field = path + '.present';
        rule.present = kind === 'present';
      }
      return rule;
    });
  }

  function openEditor(p) {
    state.editing = p ? p.name : null;
    clearErrors();
    $('editor-result').replaceChildren();
    $('editor-title').textContent = p ? `Edit connector ${p.name}` : 'New connector';
    $('f-preset').value = '';
    applyPreset('');
    for (const [k, el] of Object.entries(simple)) el.value = (p && p[k] != null ? String(p[k]) : '') || (k === 'mode' ? 'mirror' : '');
    for (const [k, el] of Object.entries(switches)) el.checked = Boolean(p && p[k]);
    const password = $('f-password');
    password.value = '';
    password.placeholder = !p || !p.has_password ? 'empty: no password'
      : p.password_env ? `from environment variable ${p.password_env} — leave empty to keep it`
        : p.password_file ? `from the file ${p.password_file} — leave empty to keep it`
          : 'stored in the file — leave empty to keep it';
    $('password-hint').textContent = p && (p.password_env || p.password_file)
      ? 'Write-only. Typing a password here replaces the ' + (p.password_env ? 'environment variable' : 'password file') +
        ' with the password itself, in plain text in the configuration file (mode 0600). To rotate it, change the ' +
        (p.password_env ? `variable (secrets.env) and reload` : 'file and reload') + ' instead.'
      : 'Write-only: a stored password is never shown.';
    $('rules').replaceChildren(...((p && p.prefilter) || []).map((r) => ruleRow(r, false)));
    $('fields').replaceChildren(...FIELDS.flatMap(([f, def]) => {
      const input = h('input', {
        id: 'field-' + f, 'data-field': 'fields.' + f, 'data-testid': 'field-' + f,
        placeholder: 'off', autocomplete: 'off', spellcheck: 'false',
      });
      input.value = p ? (p.fields[f] ?? '') : def;
      return [h('label', { for: 'field-' + f }, f), h('div', { class: 'cell' }, input)];
    }));
    $('editor-section').hidden = false;
    $('editor-section').scrollIntoView({ block: 'start' });
    simple.name.focus();
  }

  function closeEditor() {
    state.editing = null;
    $('f-password').value = '';
    $('editor-section').hidden = true;
  }

  function collect() {
    const text = (el) => (el.value.trim() === '' ? null : el.value.trim());
    const profile = Object.fromEntries(Object.entries(simple).map(([k, el]) => [k, text(el)]));
    profile.name = simple.name.value.trim();
    profile.uri = simple.uri.value.trim();
    profile.mode = simple.mode.value;
    const size = profile.page_size;
    profile.page_size = size === null ? null : Number(size);
    for (const [k, el] of Object.entries(switches)) profile[k] = el.checked;
    profile.prefilter = collectRules($('rules'), 'prefilter');
    profile.fields = Object.fromEntries(FIELDS.map(([f]) => [f, $('field-' + f).value.trim()]));
    const password = $('f-password').value;
    if (password) profile.password = password;
    return profile;
  }

  function clearErrors() {
    for (const el of editor.querySelectorAll('.field-error')) el.remove();
    for (const el of editor.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    $('editor-errors').replaceChildren();
  }

  const parentPath = (f) => f.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
  const ALIASES = { cron: 'schedule', password_env: 'password', password_file: 'password' };

  // Puts a server-side validation error next to the input it is about.
  function placeError(err) {
    let field = err.field ? ALIASES[err.field] || err.field : '';
    for (; field; field = parentPath(field) === field ? '' : parentPath(field)) {
      const el = editor.querySelector(`[data-field="${CSS.escape(field)}"]`);
      if (!el || el.hidden || el.closest('[hidden]')) continue;
      const message = h('p', { class: 'field-error', 'data-testid': 'field-error', 'data-for': field, role: 'alert' }, err.message);
      if (el.matches('input, select')) {
        el.setAttribute('aria-invalid', 'true');
        el.after(message);
      } else {
        el.append(message);
      }
      return;
    }
    $('editor-errors').append(h('p', { 'data-testid': 'general-error' },
      (err.field || err.path ? `${err.field || err.path}: ` : '') + err.message));
  }

  function showEditorError(e) {
    if (e instanceof Unauthorized) return;
    clearErrors();
    const errors = e.data && Array.isArray(e.data.errors) ? e.data.errors : null;
    if (errors && errors.length) {
      errors.forEach(placeError);
    } else {
      placeError({ message: e.message });
    }
    const first = editor.querySelector('[aria-invalid="true"], .field-error, #editor-errors p');
    if (first) first.scrollIntoView({ block: 'center' });
  }

  editor.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const original = state.editing;
    const profile = collect();
    clearErrors();
    $('save').disabled = true;
    try {
      if (original === null) {
        await api('POST', '/api/v1/connectors', profile);
      } else {
        const path = '/api/v1/connectors/' + encodeURIComponent(original);
        try {
          await api('PUT', path, profile);
        } catch (e) {
          // A rename takes the old name's entries out of the book: past its guard, ask again.
          if (!(e instanceof ApiError) || e.status !== 409 || !e.data || !e.data.held_back) throw e;
          if (!window.confirm(`${e.message}\n\nRename ${original} to ${profile.name} anyway? Its ${e.data.entries} entries ` +
            'leave the phone book until the first import under the new name.')) {
            notice(`${original} was not renamed (held back by its deletion guard).`);
            return;
          }
          await api('PUT', path + '?force=true', profile);
        }
      }
      if (original !== null && original !== profile.name) state.results.delete(original);
      touched();
      closeEditor();
      notice(`Saved ${profile.name}.`);
      active();
      await refresh();
      const saved = document.querySelector(`[data-testid="connector"][data-name="${CSS.escape(profile.name)}"]`);
      if (saved) saved.scrollIntoView({ block: 'start' });
    } catch (e) {
      showEditorError(e);
    } finally {
      $('save').disabled = false;
    }
  });

  // The editor's two checks of the profile as it stands (saved or not): one button, one
  // request, its answer shown below the form.
  function editorCheck(id, busy, path, show) {
    $(id).addEventListener('click', async () => {
      const button = $(id);
      const profile = collect();
      clearErrors();
      button.disabled = true;
      $('editor-result').replaceChildren(h('p', { class: 'hint' }, busy));
      try {
        $('editor-result').replaceChildren(show(await api('POST', path, profile)));
      } catch (e) {
        $('editor-result').replaceChildren();
        if (e.status === 422) showEditorError(e);
        else if (!(e instanceof Unauthorized)) {
          $('editor-result').append(h('p', { class: 'error', 'data-testid': 'result-error' }, e.message));
        }
      } finally {
        button.disabled = false;
      }
    });
  }

  // Test: the dry run against the store. Test connection: the upstream only, nothing compared.
  editorCheck('editor-test', 'Testing…', '/api/v1/preview', reportView);
  editorCheck('editor-probe', 'Connecting…', '/api/v1/probe', (p) => {
    const counts = `the upstream answered ${p.fetched} entr${p.fetched === 1 ? 'y' : 'ies'} for the base DN and filter; ` +
      `the pre-filter keeps ${p.fetched - p.filtered_out}, ${p.invalid} invalid, ${p.entries} would become entries.`;
    // Connected, but an import would keep nobody: that fails as a sync does, so say so.
    if (p.entries === 0) {
      return h('p', { class: 'error', 'data-testid': 'probe-empty', role: 'alert' },
        h('strong', {}, 'Connected, but nothing to import: '), counts,
        ' A sync would keep no entry and fail — check the base DN, the filter and the pre-filter rules ' +
        '(Test shows which rule dropped whom).');
    }
    return h('p', { 'data-testid': 'probe-ok' }, h('strong', {}, 'Connection ok: '), counts);
  });

  $('cancel').addEventListener('click', closeEditor);
  $('new-connector').addEventListener('click', () => openEditor(null));
  $('add-rule').addEventListener('click', () => $('rules').append(ruleRow({}, false)));
  $('add-group').addEventListener('click', () => $('rules').append(ruleRow({ any: [{}] }, false)));

  Object.assign(shared, { openEditor, closeEditor });
})();
