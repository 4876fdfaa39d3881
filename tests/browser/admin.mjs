// Drives the admin page of a running phonebook-proxy in Debian's headless Chromium.
//
//   node tests/browser/admin.mjs <http-url> <scenario> [--option value]...
//
// Scenarios (tests/browser.rs starts slapd and the server, runs them and checks the outcome):
//   main     see the connectors, Test, Import now, search; create a profile against the real
//            slapd, Test it, save it, see it synced; edit one so the deletion guard holds the
//            import back, then apply anyway; create and delete a scratch profile.
//   editor   every editor field round-trips through a hand-written file; the AD, OpenLDAP and
//            LDIF presets; Test connection over StartTLS; a delete held back by the guard.
//   invalid  invalid filter, regex, template, name and URI: each error next to its field
//            (the Rust side checks that the file on disk did not change).
//   token    the page asks for the API token, refuses a wrong one, works with the right one.
//
// Every wait is for a selector or a response, never a fixed delay. Prints "ok - …" per step;
// exits 0 when every step passed, 1 (with the page's text and a screenshot) otherwise.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [url, scenario, ...rest] = process.argv.slice(2);
const opts = {};
for (let i = 0; i < rest.length; i += 2) {
  if (!rest[i].startsWith('--') || rest[i + 1] === undefined) usage(`bad option ${rest[i]}`);
  opts[rest[i].slice(2)] = rest[i + 1];
}
if (!url || !scenario) usage('missing arguments');

function usage(message) {
  console.error(`admin.mjs: ${message}\nusage: node admin.mjs <http-url> main|editor|invalid|token [--option value]...`);
  process.exit(2);
}

function need(name) {
  if (opts[name] === undefined) usage(`${scenario} needs --${name}`);
  return opts[name];
}

const artifacts = opts.artifacts || path.join(process.cwd(), 'target', 'browser-artifacts');
mkdirSync(artifacts, { recursive: true });
const TIMEOUT = 20_000;
const SYNC_TIMEOUT = 60_000;

const ok = (message) => console.log(`ok - ${message}`);
// Every dialog the page opened, and how to answer the next ones (accepted when none is queued).
const dialogs = [];
const answers = [];
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// helpers over the page

const card = (page, name) => page.locator(`[data-testid="connector"][data-name="${name}"]`);
const inCard = (page, name, testid) => card(page, name).locator(`[data-testid="${testid}"]`);
const exactly = (text) => new RegExp(`^\\s*${String(text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);

// Waits until the locator's (first) element has text matching `re`.
async function waitForText(locator, re, timeout = TIMEOUT) {
  await locator.filter({ hasText: re }).first().waitFor({ timeout });
}

async function text(locator) {
  return (await locator.first().textContent()).trim();
}

// Clicks and waits for the API answer the click causes.
async function clickFor(page, locator, method, urlPart) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && r.url().includes(urlPart), { timeout: SYNC_TIMEOUT }),
    locator.click(),
  ]);
  return response;
}

async function fillEditor(page, fields) {
  for (const [testid, value] of Object.entries(fields)) {
    const el = page.getByTestId(testid);
    if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(value);
    else await el.fill(value);
  }
}

async function noSecretShown(page, secret, where) {
  if (!secret) return;
  const html = await page.content();
  const values = await page.evaluate(() => [...document.querySelectorAll('input')].map((i) => i.value));
  check(!html.includes(secret) && !values.includes(secret), `the secret is not in the page (${where})`);
}

// ---------------------------------------------------------------------------------------------
// scenarios

async function main(page) {
  const corp = need('connector');
  const slapd = need('slapd');
  const corpCount = Number(need('corp-count'));
  const branchCount = Number(need('branch-count'));
  const person = need('search');
  const password = need('password');

  await page.goto(url);
  await card(page, corp).waitFor();
  check(await page.getByTestId('token-prompt').isHidden(), 'no token prompt without a token');
  check((await text(inCard(page, corp, 'uri'))) === slapd, 'the profile shows the URI');
  await waitForText(inCard(page, corp, 'bind'), /\(password set\)/);
  await waitForText(inCard(page, corp, 'outcome'), exactly('never run'));
  check((await text(inCard(page, corp, 'entries'))) === '0', 'no entries before the first import');
  await noSecretShown(page, password, 'connector list');
  ok(`connector ${corp} listed: ${slapd}, never run`);

  // Test: the dry run's change list as a table.
  const test = await clickFor(page, inCard(page, corp, 'test'), 'POST', `/connectors/${corp}/sync?dry_run=true`);
  check(test.status() === 200, `Test answered ${test.status()}`);
  await inCard(page, corp, 'preview-row').first().waitFor();
  const rows = inCard(page, corp, 'preview-row');
  check((await rows.count()) === corpCount, `${corpCount} preview rows, saw ${await rows.count()}`);
  check((await rows.first().getAttribute('data-action')) === 'create', 'preview rows are creations');
  await waitForText(rows, new RegExp(person.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  check((await text(inCard(page, corp, 'entries'))) === '0', 'Test changes nothing');
  ok(`Test of ${corp}: ${corpCount} preview rows (action, display name, numbers)`);
  // The mapped records with every field, searchable.
  const mapped = inCard(page, corp, 'mapped-row');
  check((await mapped.count()) === corpCount, `${corpCount} mapped records, saw ${await mapped.count()}`);
  await inCard(page, corp, 'mapped').getByTestId('preview-search').fill(person);
  const shown = await mapped.evaluateAll((rows) => rows.filter((r) => !r.hidden).length);
  check(shown >= 1 && shown < corpCount, `the search narrows the mapped records to ${shown}`);
  ok(`mapped records of ${corp}: ${corpCount}, search for ${person} shows ${shown}`);
  await page.screenshot({ path: path.join(artifacts, 'admin-test.png'), fullPage: true });

  // Import now: the counts change.
  const imported = await clickFor(page, inCard(page, corp, 'import'), 'POST', `/connectors/${corp}/sync`);
  check(imported.status() === 200, `Import now answered ${imported.status()}`);
  await waitForText(inCard(page, corp, 'entries'), exactly(corpCount));
  await waitForText(inCard(page, corp, 'count-created'), exactly(corpCount));
  await waitForText(inCard(page, corp, 'outcome'), exactly('applied'));
  await waitForText(page.getByTestId('summary'), new RegExp(`^${corpCount} entries`));
  ok(`Import now: ${corp} has ${corpCount} entries, created ${corpCount}, outcome applied`);

  // Search the phone book.
  await page.getByTestId('search-input').fill(person);
  await page.getByTestId('search-submit').click();
  await waitForText(page.getByTestId('search-name'), exactly(person));
  ok(`search for "${person}" finds them`);

  // A new profile against the real slapd: Test, then Save.
  await page.getByTestId('new-connector').click();
  await page.getByTestId('editor').waitFor();
  check((await page.getByTestId('field-display_name').inputValue()) === '{displayName|cn}', 'defaults prefilled');
  await fillEditor(page, {
    'f-name': 'branch',
    'f-comment': 'Branch office (created on the page)',
    'f-uri': slapd,
    'f-base-dn': need('base-dn'),
    'f-bind-dn': need('bind-dn'),
    'f-password': password,
    'f-filter': '(objectClass=inetOrgPerson)',
    'f-mode': 'mirror',
    'f-schedule': '1h',
    'field-company': 'Branch office',
  });
  await page.getByTestId('add-rule').click();
  const rule = page.getByTestId('rule').last();
  await rule.getByTestId('rule-attribute').fill('memberOf');
  await rule.getByTestId('rule-kind').selectOption('matches');
  await rule.getByTestId('rule-value').fill('(?i)^cn=company-phonebook,');
  const probed = await clickFor(page, page.getByTestId('editor-probe'), 'POST', '/api/v1/probe');
  check(probed.status() === 200, `test connection answered ${probed.status()}: ${await probed.text()}`);
  await waitForText(page.getByTestId('probe-ok'), new RegExp(`${branchCount} would become entries`));
  ok(`test connection of the unsaved profile: ${branchCount} would become entries`);
  const preview = await clickFor(page, page.getByTestId('editor-test'), 'POST', '/api/v1/preview');
  check(preview.status() === 200, `preview answered ${preview.status()}: ${await preview.text()}`);
  const branchRows = page.getByTestId('editor-result').getByTestId('preview-row');
  await branchRows.first().waitFor();
  check((await branchRows.count()) === branchCount, `${branchCount} preview rows for branch, saw ${await branchRows.count()}`);
  ok(`Test of the unsaved profile: ${branchCount} preview rows from slapd`);
  // Who the pre-filter dropped, and by which rule.
  const drops = page.getByTestId('editor-result').getByTestId('dropped-row');
  check((await drops.count()) > 0, 'the pre-filter dropped someone');
  const reason = await text(drops.first().getByTestId('drop-reason'));
  check(/^prefilter\[0\]: no memberof value matches/.test(reason), `drop reason: ${reason}`);
  ok(`drop reasons of the unsaved profile: ${await drops.count()} ("${reason}")`);

  const saved = await clickFor(page, page.getByTestId('save'), 'POST', '/api/v1/connectors');
  check(saved.status() === 200, `save answered ${saved.status()}: ${await saved.text()}`);
  await card(page, 'branch').waitFor();
  check(await page.getByTestId('editor').isHidden(), 'the editor closes after saving');
  await waitForText(inCard(page, 'branch', 'prefilter'), /memberOf matches \(\?i\)\^cn=company-phonebook,/i);
  await waitForText(inCard(page, 'branch', 'bind'), /\(password set\)/);
  await waitForText(inCard(page, 'branch', 'schedule'), exactly('1h'));
  await noSecretShown(page, password, 'after saving');
  // Its schedule runs the first sync at once; the page polls status until it shows.
  await waitForText(inCard(page, 'branch', 'entries'), exactly(branchCount), SYNC_TIMEOUT);
  await waitForText(inCard(page, 'branch', 'outcome'), /^\s*(applied|unchanged)\s*$/, SYNC_TIMEOUT);
  ok(`branch saved, listed and synced: ${branchCount} entries`);

  // Edit corp so that the import would remove most people: the deletion guard holds it back.
  await inCard(page, corp, 'edit').click();
  await page.getByTestId('editor').waitFor();
  check((await page.getByTestId('f-name').inputValue()) === corp, 'the editor shows the profile');
  check((await page.getByTestId('f-password').inputValue()) === '', 'the password field starts empty');
  check((await page.getByTestId('f-uri').inputValue()) === slapd, 'the editor shows the URI');
  await page.getByTestId('f-filter').fill(need('narrow-filter'));
  const edited = await clickFor(page, page.getByTestId('save'), 'PUT', `/api/v1/connectors/${corp}`);
  check(edited.status() === 200, `edit answered ${edited.status()}: ${await edited.text()}`);
  await waitForText(inCard(page, corp, 'filter'), exactly(need('narrow-filter')));
  await waitForText(inCard(page, corp, 'bind'), /\(password set\)/);
  ok(`${corp} edited: filter ${need('narrow-filter')}, stored password kept`);

  await clickFor(page, inCard(page, corp, 'import'), 'POST', `/connectors/${corp}/sync`);
  await inCard(page, corp, 'held-back').waitFor();
  await waitForText(inCard(page, corp, 'held-back-error'), /deletion guard/);
  await waitForText(inCard(page, corp, 'outcome'), exactly('held back'));
  check((await text(inCard(page, corp, 'entries'))) === String(corpCount), 'a held-back import changes nothing');
  ok(`Import now held back: "${await text(inCard(page, corp, 'held-back-error'))}"`);
  await page.screenshot({ path: path.join(artifacts, 'admin-held-back.png'), fullPage: true });

  const narrowCount = Number(need('narrow-count'));
  const forced = await clickFor(page, inCard(page, corp, 'apply-anyway'), 'POST', `/connectors/${corp}/sync?force=true`);
  check(forced.status() === 200, `apply anyway answered ${forced.status()}`);
  await waitForText(inCard(page, corp, 'entries'), exactly(narrowCount));
  await waitForText(inCard(page, corp, 'outcome'), exactly('applied'));
  await waitForText(inCard(page, corp, 'count-removed'), exactly(corpCount - narrowCount));
  check(await inCard(page, corp, 'held-back').count() === 0, 'the held-back notice is gone');
  ok(`apply anyway: ${corp} now has ${narrowCount} entries, removed ${corpCount - narrowCount}`);

  // The run history, newest first: the forced import, the held-back one, the first import.
  await inCard(page, corp, 'history-toggle').click();
  const runs = inCard(page, corp, 'history-run');
  await runs.nth(2).waitFor();
  const outcomes = await runs.evaluateAll((rows) => rows.map((r) => r.dataset.outcome));
  check(JSON.stringify(outcomes.slice(0, 3)) === JSON.stringify(['applied', 'held_back', 'applied']),
    `history outcomes ${outcomes}`);
  check((await text(inCard(page, corp, 'last-success'))) !== 'never', 'a last success is shown');
  check(await inCard(page, corp, 'failure-streak').count() === 0, 'no failure streak after a success');
  ok(`run history of ${corp}: ${outcomes.join(', ')}`);

  // Create and delete a scratch profile.
  await page.getByTestId('new-connector').click();
  await fillEditor(page, { 'f-name': 'scratch', 'f-uri': slapd, 'f-base-dn': need('base-dn') });
  const created = await clickFor(page, page.getByTestId('save'), 'POST', '/api/v1/connectors');
  check(created.status() === 200, `create answered ${created.status()}: ${await created.text()}`);
  await card(page, 'scratch').waitFor();
  const deleted = await clickFor(page, inCard(page, 'scratch', 'delete'), 'DELETE', '/api/v1/connectors/scratch');
  check(deleted.status() === 200, `delete answered ${deleted.status()}`);
  await card(page, 'scratch').waitFor({ state: 'detached' });
  ok('scratch created and deleted');

  // (Not branch: every saved edit reloads the configuration, and a reload runs each scheduled
  // connector's sync at once, so a Test of branch now could meet a running sync: 409.)
  await inCard(page, corp, 'test').click();
  await inCard(page, corp, 'no-changes').waitFor();
  await page.getByTestId('search-submit').click();
  await waitForText(page.getByTestId('search-name'), exactly(person));
  await noSecretShown(page, password, 'at the end');
  await page.screenshot({ path: path.join(artifacts, 'admin.png'), fullPage: true });
  ok(`screenshot ${path.join(artifacts, 'admin.png')}`);
}

// Every editor field against a file written by hand (comments, attribute case), the
// presets, Test connection over StartTLS, and a delete held back by the deletion guard.
async function editor(page) {
  const corp = need('connector');
  const slapd = need('slapd');
  const ca = need('ca-file');
  const members = Number(need('members'));
  const people = Number(need('people'));

  await page.goto(url);
  await card(page, corp).waitFor();
  await clickFor(page, inCard(page, corp, 'import'), 'POST', `/connectors/${corp}/sync`);
  await waitForText(inCard(page, corp, 'entries'), exactly(members));
  ok(`${corp} imported: ${members} entries`);

  // The editor shows the file as written: the attribute's case, the count, the identity.
  await inCard(page, corp, 'edit').click();
  await page.getByTestId('editor').waitFor();
  const shown = {
    'f-id-attribute': 'entryUUID', 'f-max-removals': '3', 'f-page-size': '', 'f-timeout': '',
    'f-timezone': '', 'f-ca-file': '',
  };
  for (const [testid, want] of Object.entries(shown)) {
    const got = await page.getByTestId(testid).inputValue();
    check(got === want, `${testid} shows ${JSON.stringify(got)}, the file has ${JSON.stringify(want)}`);
  }
  check(!(await page.getByTestId('f-starttls').isChecked()), 'StartTLS is off as in the file');
  check((await page.getByTestId('rule-attribute').first().inputValue()) === 'memberOf', 'the attribute keeps its case');
  ok('the editor shows the file as written (entryUUID, memberOf, max_removals 3)');

  // Every field changed; Test connection first proves the TLS settings against slapd.
  const values = JSON.parse(need('values'));
  await fillEditor(page, values.inputs);
  for (const [testid, on] of Object.entries(values.switches)) await page.getByTestId(testid).setChecked(on);
  const probed = await clickFor(page, page.getByTestId('editor-probe'), 'POST', '/api/v1/probe');
  check(probed.status() === 200, `test connection over StartTLS answered ${probed.status()}: ${await probed.text()}`);
  await waitForText(page.getByTestId('probe-ok'), new RegExp(`${members} would become entries`));
  ok(`test connection over StartTLS with the CA file: ${members} would become entries`);
  const saved = await clickFor(page, page.getByTestId('save'), 'PUT', `/api/v1/connectors/${corp}`);
  check(saved.status() === 200, `save answered ${saved.status()}: ${await saved.text()}`);
  await waitForText(inCard(page, corp, 'connection'), /^\s*StartTLS, CA .*, timeout 45s, page size 100\s*$/);
  await waitForText(inCard(page, corp, 'schedule'), /Europe\/Berlin/);
  await waitForText(inCard(page, corp, 'max-removals'), /at most 50% per import/);
  ok('every field saved and shown on the card');

  // Reopened, the editor shows what was saved.
  await inCard(page, corp, 'edit').click();
  for (const [testid, want] of Object.entries(values.inputs)) {
    if (testid === 'f-password') continue;
    const got = await page.getByTestId(testid).inputValue();
    check(got === want, `${testid} reopens as ${JSON.stringify(got)}, saved ${JSON.stringify(want)}`);
  }
  for (const [testid, on] of Object.entries(values.switches)) {
    check((await page.getByTestId(testid).isChecked()) === on, `${testid} reopens ${on}`);
  }
  await page.getByTestId('cancel').click();
  ok('reopened, every field shows what was saved');

  // Presets: Active Directory, then OpenLDAP, saved against slapd over StartTLS.
  await page.getByTestId('new-connector').click();
  await page.getByTestId('f-preset').selectOption('ad');
  check((await page.getByTestId('f-filter').inputValue()).includes('userAccountControl:1.2.840.113556.1.4.803:=2'),
    'the AD preset leaves disabled accounts out');
  check((await page.getByTestId('f-id-attribute').inputValue()) === 'objectGUID', 'AD: objectGUID');
  check((await page.getByTestId('rule-attribute').first().inputValue()) === 'memberOf', 'AD: a memberOf rule');
  check((await page.getByTestId('f-uri').getAttribute('placeholder')).startsWith('ldaps://'), 'AD: an ldaps:// example');
  await waitForText(page.getByTestId('preset-hint'), /Active Directory/);
  // Against slapd nobody is an AD user: connected, but nothing to import — said as a problem.
  await fillEditor(page, {
    'f-name': 'ad', 'f-uri': slapd, 'f-base-dn': need('base-dn'), 'f-bind-dn': need('bind-dn'),
    'f-password': need('password'),
  });
  const adProbe = await clickFor(page, page.getByTestId('editor-probe'), 'POST', '/api/v1/probe');
  check(adProbe.status() === 200, `AD preset probe answered ${adProbe.status()}: ${await adProbe.text()}`);
  await waitForText(page.getByTestId('probe-empty'), /nothing to import.*would keep no entry and fail/);
  ok('the Active Directory preset: person filter without disabled accounts, objectGUID, memberOf; nothing to import is an error');
  await page.getByTestId('f-preset').selectOption('openldap');
  check(await page.getByTestId('f-starttls').isChecked(), 'OpenLDAP: StartTLS');
  check((await page.getByTestId('f-id-attribute').inputValue()) === 'entryUUID', 'OpenLDAP: entryUUID');
  check((await page.getByTestId('rule').count()) === 0, 'OpenLDAP: no pre-filter');
  check((await page.getByTestId('f-schedule').inputValue()) === '', 'OpenLDAP: no schedule left over from the AD preset');
  check((await page.getByTestId('field-company').inputValue()) === '{o|company}', 'OpenLDAP: the default company field');
  await fillEditor(page, {
    'f-name': 'ol', 'f-uri': slapd, 'f-base-dn': need('base-dn'), 'f-bind-dn': need('bind-dn'),
    'f-password': need('password'), 'f-ca-file': ca,
  });
  const olProbe = await clickFor(page, page.getByTestId('editor-probe'), 'POST', '/api/v1/probe');
  check(olProbe.status() === 200, `OpenLDAP preset probe answered ${olProbe.status()}: ${await olProbe.text()}`);
  await waitForText(page.getByTestId('probe-ok'), new RegExp(`${people} would become entries`));
  const olSaved = await clickFor(page, page.getByTestId('save'), 'POST', '/api/v1/connectors');
  check(olSaved.status() === 200, `saving ol answered ${olSaved.status()}: ${await olSaved.text()}`);
  await card(page, 'ol').waitFor();
  ok(`the OpenLDAP preset, saved as ol: StartTLS, entryUUID, ${people} people over TLS`);
  await page.getByTestId('new-connector').click();
  await page.getByTestId('f-bind-dn').fill('cn=someone');
  await page.getByTestId('f-preset').selectOption('ldif');
  check((await page.getByTestId('f-bind-dn').inputValue()) === '', 'LDIF: no bind DN');
  check((await page.getByTestId('f-uri').getAttribute('placeholder')).startsWith('file:'), 'LDIF: a file: example');
  await page.getByTestId('cancel').click();
  ok('the LDIF preset clears the bind');

  // Delete through the guard: corp's entries are more than max_removals allows.
  dialogs.length = 0;
  answers.push(true, false); // confirm the delete, then refuse the forced one
  const held = await clickFor(page, inCard(page, corp, 'delete'), 'DELETE', `/api/v1/connectors/${corp}`);
  check(held.status() === 409, `a delete past the guard is held back, got ${held.status()}`);
  await waitForText(page.getByTestId('notice'), /was not deleted/);
  check(dialogs.length === 2 && dialogs[0].includes(`Its ${members} entries`) && dialogs[1].includes(`remove its ${members} entries`),
    `the page asked twice with the count: ${JSON.stringify(dialogs)}`);
  check(await card(page, corp).count() === 1, `${corp} stays`);
  ok(`delete held back by the guard (${members} entries), refused the second time: ${corp} stays`);
  answers.push(true, true);
  const forced = await clickFor(page, inCard(page, corp, 'delete'), 'DELETE', `/api/v1/connectors/${corp}?force=true`);
  check(forced.status() === 200, `the forced delete answered ${forced.status()}`);
  await card(page, corp).waitFor({ state: 'detached' });
  ok(`${corp} deleted after the second confirmation`);
  await page.screenshot({ path: path.join(artifacts, 'admin-editor.png'), fullPage: true });
}

async function invalid(page) {
  const corp = need('connector');
  await page.goto(url);
  await card(page, corp).waitFor();
  await inCard(page, corp, 'edit').click();
  await page.getByTestId('editor').waitFor();

  // A broken filter: refused by Save and by Test, the message right after the filter input.
  await page.getByTestId('f-filter').fill('(cn=');
  const refused = await clickFor(page, page.getByTestId('save'), 'PUT', `/api/v1/connectors/${corp}`);
  check(refused.status() === 422, `an invalid filter is refused with 422, got ${refused.status()}`);
  const filterError = page.locator('[data-testid="field-error"][data-for="filter"]');
  await filterError.waitFor();
  check(await page.locator('#f-filter + [data-testid="field-error"]').count() === 1, 'the error sits right after the filter input');
  check((await page.getByTestId('f-filter').getAttribute('aria-invalid')) === 'true', 'the filter input is marked invalid');
  check(await page.getByTestId('editor').isVisible(), 'the editor stays open');
  ok(`invalid filter refused: "${await text(filterError)}"`);

  const test = await clickFor(page, page.getByTestId('editor-test'), 'POST', '/api/v1/preview');
  check(test.status() === 422, `Test of an invalid filter answers 422, got ${test.status()}`);
  await filterError.waitFor();
  ok('Test shows the same error next to the filter');

  // More kinds of error, each next to its own input: a regex, a template, the URI.
  await page.getByTestId('f-filter').fill('(objectClass=inetOrgPerson)');
  await page.getByTestId('add-rule').click();
  const rule = page.getByTestId('rule').last();
  await rule.getByTestId('rule-attribute').fill('memberOf');
  await rule.getByTestId('rule-value').fill('([unclosed');
  await page.getByTestId('field-display_name').fill('{displayName');
  await page.getByTestId('f-uri').fill('http://not-ldap.example');
  await page.getByTestId('f-schedule').fill('0 30 6 * * Mon-Fri');
  await page.getByTestId('f-timezone').fill('Mars/Olympus_Mons');
  await page.getByTestId('f-max-removals').fill('lots');
  await page.getByTestId('f-timeout').fill('soon');
  await clickFor(page, page.getByTestId('save'), 'PUT', `/api/v1/connectors/${corp}`);
  const ruleIndex = (await page.getByTestId('rule').count()) - 1;
  for (const field of [`prefilter[${ruleIndex}].matches`, 'fields.display_name', 'uri', 'timezone', 'max_removals', 'timeout']) {
    const error = page.locator(`[data-testid="field-error"][data-for="${field}"]`);
    await error.waitFor();
    ok(`${field}: "${await text(error)}"`);
  }
  check(await page.locator('[data-testid="field-error"][data-for="filter"]').count() === 0, 'a fixed field loses its error');
  check(await rule.locator('[data-testid="rule-value"] + [data-testid="field-error"]').count() === 1, 'the regex error sits in its rule row');
  await page.screenshot({ path: path.join(artifacts, 'admin-invalid.png'), fullPage: true });

  // A new profile with a name that exists and no URI.
  await page.getByTestId('cancel').click();
  await page.getByTestId('new-connector').click();
  await fillEditor(page, { 'f-name': corp, 'f-uri': '' });
  const duplicate = await clickFor(page, page.getByTestId('save'), 'POST', '/api/v1/connectors');
  check(duplicate.status() >= 400, `a duplicate is refused, got ${duplicate.status()}`);
  await page.locator('[data-testid="field-error"][data-for="name"], [data-testid="field-error"][data-for="uri"]').first().waitFor();
  ok(`a second "${corp}" without URI refused next to its fields`);
  await page.getByTestId('cancel').click();
  check(await card(page, corp).count() === 1, `still one ${corp}`);
}

async function token(page) {
  const secret = need('token');
  const person = need('search');
  const corp = need('connector');
  await page.goto(url);
  await page.getByTestId('token-prompt').waitFor();
  check(await page.getByTestId('connectors').isHidden(), 'nothing is shown before the token');
  ok('the page asks for the token');

  await page.getByTestId('token-input').fill('wrong-token');
  await page.getByTestId('token-submit').click();
  await waitForText(page.getByTestId('token-error'), /not accepted/);
  ok('a wrong token is refused');

  await page.getByTestId('token-input').fill(secret);
  await page.getByTestId('token-submit').click();
  await card(page, corp).waitFor();
  check(await page.getByTestId('token-prompt').isHidden(), 'the prompt is gone');
  await noSecretShown(page, secret, 'after entering it');
  ok('with the token the connectors show');

  const test = await clickFor(page, inCard(page, corp, 'test'), 'POST', `/connectors/${corp}/sync?dry_run=true`);
  check(test.status() === 200, `Test with the token answered ${test.status()}`);
  await inCard(page, corp, 'report').waitFor();
  await page.getByTestId('search-input').fill(person);
  await page.getByTestId('search-submit').click();
  await waitForText(page.getByTestId('search-name'), exactly(person));
  ok('Test and search work with the token');

  await page.reload();
  await card(page, corp).waitFor();
  check(await page.getByTestId('token-prompt').isHidden(), 'a reload keeps the token for the tab');
  await page.getByTestId('forget-token').click();
  await page.getByTestId('token-prompt').waitFor();
  ok('a reload keeps the token; "Forget token" asks again');
  await page.screenshot({ path: path.join(artifacts, 'admin-token.png'), fullPage: true });
}

// ---------------------------------------------------------------------------------------------

const scenarios = { main, editor, invalid, token };
if (!scenarios[scenario]) usage(`unknown scenario ${scenario}`);

const profile = mkdtempSync(path.join(tmpdir(), 'phonebook-chromium-'));
let context;
let status = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // An API answer of 401, 409 or 422 shows up as a failed resource load; anything else on
    // the console is a bug (a script error, a Content-Security-Policy violation).
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => {
    console.log(`dialog: ${d.message()}`);
    dialogs.push(d.message());
    if (answers.length && !answers.shift()) d.dismiss();
    else d.accept();
  });
  try {
    await scenarios[scenario](page);
    check(problems.length === 0, `no script errors on the page:\n${problems.join('\n')}`);
    console.log(`${scenario}: all steps passed`);
  } catch (e) {
    status = 1;
    console.log(`not ok - ${e.message}`);
    if (problems.length) console.log(problems.join('\n'));
    const body = await page.evaluate(() => document.body.innerText).catch(() => '');
    console.log(`--- page text ---\n${body.slice(0, 4000)}`);
    await page.screenshot({ path: path.join(artifacts, `admin-failed-${scenario}.png`), fullPage: true }).catch(() => {});
  }
} catch (e) {
  status = 1;
  console.log(`not ok - cannot run Chromium: ${e.message}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
