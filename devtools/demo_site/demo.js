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
};

let config = null;
let session = { signed_in: false };
let auditEvents = [];

// What GET /session cannot say, kept for this tab: which Registration user the demo signed in, and
// which session a social sign-in is about to replace (said again once the sign-in has happened).
const REGISTRATION_USER = "demo.registrationUser";
const REPLACED_SESSION = "demo.replacedSession";

function registrationUser() {
  return window.sessionStorage.getItem(REGISTRATION_USER);
}

function describeRegistration() {
  const user = registrationUser();
  return user ? `your Registration session as ${user}` : "your Registration session";
}

function describeSocial() {
  return `your ${session.provider} sign-in as ${session.identifier}`;
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
    window.sessionStorage.removeItem(REGISTRATION_USER);
    const ended = replaced ? ` ${capitalized(replaced)} has ended.` : "";
    showOutcome("ok", result, `Signed in with ${session.provider} as ${session.identifier}.${ended}`);
  } else if (result) showOutcome("ok", result, OUTCOMES[result] || "");
  else if (error === "already_linked") showOutcome("error", error, await alreadyLinkedMessage());
  else if (error) showOutcome("error", error, OUTCOMES[error] || "Unknown error code.");
}

// The service answers already_linked whoever holds the identity. The refused identity is in the
// LinkRefused audit event; this account's links are in GET /session (this session's) and, with the
// emulator, in the demo backend (all of them, as a site's backend reads its user's Capture profiles).
async function alreadyLinkedMessage() {
  const refused = auditEvents.find((event) => event.detail && event.detail.outcome === "already_linked");
  const identifier = refused ? refused.detail.identifier : null;
  const owner = identifier ? await linkedToThisAccount(identifier) : null;
  if (owner === true) return `${identifier} is already linked to this Registration account. Nothing was changed.`;
  if (owner === false) return `${identifier} is already linked to another account. Nothing was changed.`;
  return OUTCOMES.already_linked;
}

async function linkedToThisAccount(identifier) {
  if ((session.linked || []).includes(identifier)) return true;
  const user = registrationUser();
  if (config.registration !== "emulator" || !user || !session.capture) return null;
  const reply = await call(`registration/identities?user=${encodeURIComponent(user)}`, {});
  if (!reply.ok || !reply.body) return null;
  return reply.body.identifiers.includes(identifier);
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
  if (reply.ok && reply.body) showOutcome("ok", reply.body.result, OUTCOMES[reply.body.result] || "");
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
    const user = registrationUser();
    return user ? `Signed in to Registration as ${user}.` : "Signed in to Registration.";
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
  registrationNote.hidden = !session.identifier;
  registrationNote.textContent = session.identifier ? `Signing in to Registration ends ${describeSocial()}.` : "";
}

async function refreshSession() {
  const reply = await readSession();
  session = reply.status === 200 && reply.body ? reply.body : { signed_in: false };
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
    document.getElementById("session-linked").textContent =
      session.linked && session.linked.length ? session.linked.join(", ") : "none";
    document.getElementById("session-expires").textContent = session.expires_at;
  }
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
  const replaced = session.identifier ? ` ${capitalized(describeSocial())} has ended.` : "";
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
  if (!reply.ok) {
    showFailure("POST /session", reply);
    return;
  }
  if (user !== null) window.sessionStorage.setItem(REGISTRATION_USER, user);
  else window.sessionStorage.removeItem(REGISTRATION_USER);
  const who = user !== null ? ` ${user}` : "";
  showOutcome(
    "ok",
    "registration",
    `Signed in to the Registration account${who}; the session now holds its access token.${replaced}`,
  );
  await refreshSession();
}

async function signOut() {
  const reply = await api("DELETE", "/session");
  if (reply.ok) window.sessionStorage.removeItem(REGISTRATION_USER);
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
  // The form keeps showing the Registration user this tab signed in as, not the page's default.
  if (config.registration === "emulator" && registrationUser()) {
    document.getElementById("registration-user").value = registrationUser();
  }
  document.getElementById("registration-form").addEventListener("submit", signInToRegistration);
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("confirm-link").addEventListener("click", () => decidePendingLink(true));
  document.getElementById("cancel-link").addEventListener("click", () => decidePendingLink(false));
  const redirect = takeRedirectOutcome();
  try {
    if (new URLSearchParams(window.location.search).get("confirm") === "link") await showPendingLink();
    await refreshSession();
    if (redirect) await showRedirectOutcome(redirect);
  } finally {
    document.body.dataset.ready = "true";
  }
}

main();
