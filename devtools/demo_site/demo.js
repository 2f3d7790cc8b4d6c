// The demo page: plain fetch() calls to the token URL service, as a site's own page would make them.
"use strict";

const OUTCOMES = {
  signed_in: "Signed in with a social provider.",
  linked: "The social identity is now linked to the Registration account.",
  invalid_request: "The token POST was malformed.",
  untrusted_origin: "The token was posted from a site this service does not trust (TOKEN_POST_ORIGINS). Nothing was changed.",
  token_url_invalid: "This token URL was not started by this browser, was already used or has expired. Start again.",
  token_invalid: "Social Login refused the token. Sign in again.",
  already_linked: "That social identity is already linked to a Registration account: another one, or this one through an earlier session. Nothing was changed.",
  session_expired: "The Registration session has ended. Sign in to Registration again, then link.",
  service_unavailable: "Identity Cloud or a dependency is unavailable. Try again.",
  configuration_error: "The service is misconfigured (apiKey, Capture client, flow). Check the settings.",
  request_in_progress: "A duplicate of this sign-in is still running. Reload in a moment.",
  cancelled: "The link was cancelled. Nothing was linked.",
  no_pending_link: "No link is waiting for confirmation: it was already decided, replaced, or the session ended.",
  invalid_access_token: "Capture refused the Registration access token (invalid or expired). No session was made.",
  unauthorized: "Sign in to Registration first (step 2).",
  not_linked: "That identity is not linked to this Registration account (any more). Nothing was changed.",
  last_sign_in_method: "This is the account's only way to sign in (it has no password): it stays linked.",
};

let config = null;
let session = { signed_in: false };
let auditEvents = [];

// What GET /session cannot say once it has happened, kept for this tab: which session a social
// sign-in is about to replace (said again once the sign-in has happened).
const REPLACED_SESSION = "demo.replacedSession";

// Who is signed in to Registration, as GET /session's `account` names them.
function accountName(account) {
  return account ? account.display_name || account.email || account.uuid : null;
}

function describeRegistration() {
  const name = accountName(session.account);
  return name ? `your Registration session as ${name}` : "your Registration session";
}

function describeSocial() {
  return `your ${session.provider} sign-in as ${session.identifier}`;
}

// The browser's one session, which any new sign-in ends.
function describeCurrentSession() {
  return session.identifier ? describeSocial() : describeRegistration();
}

function capitalized(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// Every reply as {status, ok, body}: a body that is not JSON (a proxy's error page) becomes null,
// and a network failure becomes status 0, so each caller can show what went wrong.
async function call(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    return { status: 0, ok: false, body: { error: "network_error", message: String(error) } };
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: response.status, ok: response.ok, body };
}

function api(method, path, body) {
  const init = { method, credentials: "include", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return call(config.api_base_url + path, init);
}

// Our routes answer {"error", "message"}; the gateway's own refusals answer {"message"}.
function showFailure(action, reply) {
  const body = reply.body || {};
  const code = body.error || (reply.status ? `http_${reply.status}` : "network_error");
  showOutcome("error", code, `${action} failed (HTTP ${reply.status}): ${body.message || "no details"}`);
}

function showOutcome(kind, code, message) {
  const box = document.getElementById("outcome");
  box.hidden = false;
  box.className = kind;
  box.dataset.code = code;
  box.replaceChildren();
  const label = document.createElement("code");
  label.textContent = code;
  box.append(label, " " + message);
}

// The token redirect's ?result= or ?error=, dropped from the address once read: a reload shows no old banner.
function takeRedirectOutcome() {
  const url = new URL(window.location.href);
  const outcome = { result: url.searchParams.get("result"), error: url.searchParams.get("error") };
  if (outcome.result === null && outcome.error === null) return null;
  url.searchParams.delete("result");
  url.searchParams.delete("error");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  return outcome;
}

async function showRedirectOutcome({ result, error }) {
  const replaced = window.sessionStorage.getItem(REPLACED_SESSION);
  window.sessionStorage.removeItem(REPLACED_SESSION);
  if (result === "signed_in" && session.identifier) {
    const ended = replaced ? ` ${capitalized(replaced)} has ended.` : "";
    showOutcome("ok", result, `Signed in with ${session.provider} as ${session.identifier}.${ended}`);
  } else if (result === "linked") showOutcome("ok", result, linkedMessage());
  else if (result) showOutcome("ok", result, OUTCOMES[result] || "");
  else if (error === "already_linked") showOutcome("error", error, await alreadyLinkedMessage());
  else if (error) showOutcome("error", error, OUTCOMES[error] || "Unknown error code.");
}

// Which identity went to which account: the newest Linked audit event names both (the account by its
// uuid), and GET /session names the account this browser is signed in to.
function linkedMessage() {
  const linked = auditEvents.find((event) => event["detail-type"] === "Linked");
  const detail = linked ? linked.detail : null;
  const account = session.account;
  if (!detail || !account || detail.uuid !== account.uuid) return OUTCOMES.linked;
  return `${detail.provider} identity ${detail.identifier} is now linked to the Registration account ${accountName(account)}.`;
}

// The service answers already_linked whoever holds the identity. The refused identity is in the
// LinkRefused audit event; the account's own links are in GET /session, as Capture holds them.
async function alreadyLinkedMessage() {
  const refused = auditEvents.find((event) => event.detail && event.detail.outcome === "already_linked");
  const identifier = refused ? refused.detail.identifier : null;
  const owner = identifier ? linkedToThisAccount(identifier) : null;
  if (owner === true) return `${identifier} is already linked to this Registration account. Nothing was changed.`;
  if (owner === false) return `${identifier} is already linked to another account. Nothing was changed.`;
  return OUTCOMES.already_linked;
}

// True or false from the account's links; null when they are not known for sure (no account, or stale).
function linkedToThisAccount(identifier) {
  if (session.linked.some((linked) => linked.identifier === identifier)) return true;
  return session.account && !session.stale ? false : null;
}

// Link confirmation (LINK_CONFIRMATION=on): the token redirect lands here with ?confirm=link.
async function showPendingLink() {
  const reply = await api("GET", "/link");
  if (reply.status !== 200 || !reply.body) {
    const code = reply.body && reply.body.error ? reply.body.error : `http_${reply.status}`;
    showOutcome("error", code, OUTCOMES[code] || "The pending link could not be read.");
    return;
  }
  const pending = reply.body;
  document.getElementById("confirm-provider").textContent = pending.provider;
  document.getElementById("confirm-name").textContent = pending.display_name || "(none given)";
  document.getElementById("confirm-identifier").textContent = pending.identifier;
  document.getElementById("confirm-expires").textContent = pending.expires_at;
  document.getElementById("confirm-panel").hidden = false;
}

async function decidePendingLink(confirm) {
  for (const button of document.querySelectorAll("#confirm-panel button")) button.disabled = true;
  const reply = await api("POST", "/link", { confirm });
  document.getElementById("confirm-panel").hidden = true;
  // The decision is made (or refused): a reload must not ask again.
  window.history.replaceState(null, "", window.location.pathname);
  await refreshSession();
  const code = reply.body && reply.body.error;
  const result = reply.body && reply.body.result;
  if (reply.ok && result === "linked") showOutcome("ok", result, linkedMessage());
  else if (reply.ok && result) showOutcome("ok", result, OUTCOMES[result] || "");
  else if (code === "already_linked") showOutcome("error", code, await alreadyLinkedMessage());
  else if (OUTCOMES[code]) showOutcome("error", code, OUTCOMES[code]);
  else showFailure("POST /link", reply);
}

// Signed out, the browser holds no session cookie: ask the demo backend (which sees the cookie) before
// calling GET /session, whose answer would only be a 401 logged as an error in the console.
async function readSession() {
  const hint = await call("session-hint.json", {});
  if (hint.ok && hint.body && !hint.body.session_cookie) return { status: 401, body: { signed_in: false } };
  return api("GET", "/session");
}

function describeSession() {
  if (!session.signed_in) return "Signed out.";
  if (session.identifier) return `Signed in with ${session.provider} as ${session.identifier}.`;
  if (session.capture) {
    const name = accountName(session.account);
    return name ? `Signed in to Registration as ${name}.` : "Signed in to Registration.";
  }
  return "Signed in.";
}

// Each kind of sign-in replaces the browser's session: say so before the click.
function showReplacementNotes() {
  const socialNote = document.getElementById("sign-in-replaces");
  socialNote.hidden = !session.capture;
  socialNote.textContent = session.capture
    ? `Signing in with a provider ends ${describeRegistration()}; link instead (step 3) to keep it.`
    : "";
  const registrationNote = document.getElementById("registration-replaces");
  registrationNote.hidden = !session.signed_in;
  registrationNote.textContent = !session.signed_in ? "" : `Signing in to Registration ends ${describeCurrentSession()}.`;
}

// The account's linked identities, each with its Unlink button.
function showLinked() {
  const list = document.getElementById("session-linked");
  list.replaceChildren();
  if (!session.linked.length) {
    list.textContent = "none";
    return;
  }
  for (const linked of session.linked) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.dataset.testid = "linked-identity";
    name.textContent = `${linked.provider}: ${linked.identifier}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = "Unlink";
    button.setAttribute("aria-label", `Unlink ${linked.identifier}`);
    button.addEventListener("click", () => unlink(linked.identifier));
    item.append(name, button);
    list.append(item);
  }
}

function describeAccount() {
  const account = session.account;
  if (!account) return "(none)";
  const email = account.email ? ` <${account.email}>` : "";
  return `${account.display_name || "(no name)"}${email}, uuid ${account.uuid}`;
}

async function refreshSession() {
  const reply = await readSession();
  session = reply.status === 200 && reply.body ? reply.body : { signed_in: false, linked: [] };
  const state = document.getElementById("session-state");
  const details = document.getElementById("session-details");
  document.getElementById("sign-out").hidden = !session.signed_in;
  details.hidden = !session.signed_in;
  if (reply.status !== 200 && reply.status !== 401) {
    const detail = reply.body ? reply.body.error || reply.body.message : "no details";
    state.textContent = `GET /session answered ${reply.status}: ${detail}`;
  } else {
    state.textContent = describeSession();
  }
  if (session.signed_in) {
    document.getElementById("session-identity").textContent =
      session.identifier ? `${session.provider}: ${session.identifier}` : "(no social sign-in)";
    document.getElementById("session-capture").textContent =
      session.capture ? "yes (access token held, encrypted)" : "no";
    document.getElementById("session-account").textContent = describeAccount();
    showLinked();
    document.getElementById("session-expires").textContent = session.expires_at;
  }
  document.getElementById("session-stale").hidden = !session.stale;
  for (const button of document.querySelectorAll("#link-providers button")) {
    button.disabled = !session.capture;
  }
  showReplacementNotes();
  await refreshAuditEvents();
}

// The demo backend's copy of the audit events (events.json): what a subscriber to the bus receives.
async function refreshAuditEvents() {
  const reply = await call("events.json", {});
  const body = document.querySelector("#audit-events tbody");
  body.replaceChildren();
  auditEvents = (reply.body && reply.body.events) || [];
  for (const event of auditEvents) {
    const row = document.createElement("tr");
    const detail = event.detail || {};
    const cells = [
      [detail.time, false], [event["detail-type"], false], [detail.outcome, false],
      [detail.provider, false], [detail.identifier, true], [detail.session, true],
    ];
    for (const [value, long] of cells) {
      const cell = document.createElement("td");
      cell.textContent = value == null ? "" : String(value);
      if (long) cell.className = "long";
      row.append(cell);
    }
    body.append(row);
  }
}

async function startSocial(intent, provider) {
  const reply = await api("POST", "/token-url", { intent });
  if (!reply.ok || !reply.body) {
    showFailure("POST /token-url", reply);
    return;
  }
  if (intent === "sign_in" && session.capture) window.sessionStorage.setItem(REPLACED_SESSION, describeRegistration());
  else window.sessionStorage.removeItem(REPLACED_SESSION);
  // Social Login's widgetless start: the provider's sign-in, then a POST of the token to token_url.
  const start = `${config.social_login_url}/${provider.slug}/start?token_url=${encodeURIComponent(reply.body.token_url)}`;
  window.location.assign(start);
}

async function signInToRegistration(event) {
  event.preventDefault();
  let accessToken;
  let expiresIn = 3600;
  const user = config.registration === "emulator" ? document.getElementById("registration-user").value : null;
  const replaced = session.signed_in ? ` ${capitalized(describeCurrentSession())} has ended.` : "";
  if (user !== null) {
    const minted = await call("registration", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user }),
    });
    if (!minted.ok || !minted.body) {
      showFailure("Registration sign-in", minted);
      return;
    }
    accessToken = minted.body.access_token;
    expiresIn = minted.body.expires_in;
  } else {
    accessToken = document.getElementById("registration-token").value.trim();
  }
  const reply = await api("POST", "/session", { access_token: accessToken, expires_in: expiresIn });
  if (!reply.ok || !reply.body) {
    const code = reply.body && reply.body.error;
    if (code === "invalid_access_token") showOutcome("error", code, OUTCOMES[code]);
    else showFailure("POST /session", reply);
    return;
  }
  const name = accountName(reply.body.account);
  const who = name ? ` ${name}` : "";
  showOutcome(
    "ok",
    "registration",
    `Signed in to the Registration account${who}; the session now holds its access token.${replaced}`,
  );
  await refreshSession();
}

async function unlink(identifier) {
  const reply = await api("POST", "/unlink", { identifier });
  await refreshSession();
  const code = reply.body && reply.body.error;
  if (reply.ok) showOutcome("ok", "unlinked", `${identifier} is no longer linked to the Registration account.`);
  else if (OUTCOMES[code]) showOutcome("error", code, OUTCOMES[code]);
  else showFailure("POST /unlink", reply);
}

async function signOut() {
  const reply = await api("DELETE", "/session");
  if (reply.ok) showOutcome("ok", "signed_out", "Signed out: the session is deleted.");
  else showFailure("DELETE /session", reply);
  await refreshSession();
}

function providerButtons(containerId, intent, verb) {
  const container = document.getElementById(containerId);
  for (const provider of config.providers) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${verb} ${provider.name}`;
    button.addEventListener("click", () => startSocial(intent, provider));
    container.append(button);
  }
}

async function main() {
  const loaded = await call("config.json", {});
  if (!loaded.ok || !loaded.body) {
    showFailure("Loading the demo's settings", loaded);
    return;
  }
  config = loaded.body;
  providerButtons("sign-in-providers", "sign_in", "Sign in with");
  providerButtons("link-providers", "link", "Link");
  if (config.registration !== "emulator") {
    document.getElementById("registration-user-label").hidden = true;
    document.getElementById("registration-user").required = false;
    document.getElementById("registration-token-label").hidden = false;
    document.getElementById("registration-token").required = true;
  }
  document.getElementById("registration-form").addEventListener("submit", signInToRegistration);
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("confirm-link").addEventListener("click", () => decidePendingLink(true));
  document.getElementById("cancel-link").addEventListener("click", () => decidePendingLink(false));
  const redirect = takeRedirectOutcome();
  try {
    if (new URLSearchParams(window.location.search).get("confirm") === "link") await showPendingLink();
    await refreshSession();
    // The form keeps naming the Registration user this browser is signed in as, not the page's default
    // (the emulator names its users by their id).
    if (config.registration === "emulator" && session.account && session.account.display_name) {
      document.getElementById("registration-user").value = session.account.display_name;
    }
    if (redirect) await showRedirectOutcome(redirect);
  } finally {
    document.body.dataset.ready = "true";
  }
}

main();
