// The local workspace page: polls /api/state, renders the channel as the chosen person sees it,
// sends slash commands and button clicks (the server signs them and posts them to the bot).
import { el, emojify, mrkdwn, renderBlocks } from "./blocks.js";
import { renderSidebar } from "./panels.js";
import { showTab } from "./home.js";

const POLL_MS = 700;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let me = params.get("user") || localStorage.getItem("workspace.user") || "UOPERATOR";
let last = "";
let state = null;
let tab = "channel"; // or "home": the bot's App Home

async function api(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function showError(message) {
  const node = $("composer-error");
  node.textContent = message || "";
  node.hidden = !message;
}

let timer = null;

async function poll() {
  clearTimeout(timer);
  const asked = me;
  try {
    const response = await fetch(`/api/state?user=${encodeURIComponent(asked)}`, { cache: "no-store" });
    const text = await response.text();
    $("offline").hidden = true;
    if (asked === me && response.ok && text !== last) {
      last = text;
      state = JSON.parse(text);
      render();
    }
  } catch (err) {
    $("offline").hidden = false;
  } finally {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }
}

const soon = () => { clearTimeout(timer); timer = setTimeout(poll, 150); };

function context() {
  const names = { [state.bot.id]: state.bot.name };
  state.people.forEach((p) => { names[p.id] = p.name; });
  return { names, channels: { [state.channel.id]: state.channel.name }, onButton: pressed };
}

// Parts are rebuilt only when they changed, so a button is not replaced under the pointer.
const drawn = { messages: "", sidebar: "", home: "" };

function render() {
  const ctx = context();
  renderPeople();
  const messages = JSON.stringify([me, state.messages]);
  if (messages !== drawn.messages) {
    drawn.messages = messages;
    renderMessages(ctx);
  }
  const sidebar = JSON.stringify([state.drills, state.scenarios, state.scenario, state.world]);
  if (sidebar !== drawn.sidebar) {
    drawn.sidebar = sidebar;
    renderSidebar(state, { setDrill, startScenario, ctx });
  }
  const home = JSON.stringify([me, tab, state.home]);
  if (home !== drawn.home) {
    drawn.home = home;
    showTab(tab, state, ctx, { homeButton: pressedHome });
  }
  const who = state.people.find((p) => p.id === me);
  $("composer-input").placeholder = `Message #${state.channel.name} as ${who ? who.name : me}`;
  $("channel-name").textContent = `# ${state.channel.name}`;
}

// A button on the App Home: the same confirm dialog, then a click in a view.
function pressedHome(element, node) {
  const send = async () => {
    node.disabled = true;
    try {
      await api("/api/home-click", { user: me, action_id: element.action_id, value: element.value || "" });
      showError("");
      soon();
    } catch (err) {
      showError(err.message);
      node.disabled = false;
    }
  };
  if (element.confirm) confirmDialog(element.confirm, send);
  else send();
}

// Opening the App Home is what makes the bot publish it (app_home_opened), as in Slack.
async function openTab(next) {
  tab = next;
  drawn.home = "";
  if (next === "home") {
    try { await api("/api/home", { user: me }); showError(""); } catch (err) { showError(err.message); }
  }
  if (state) render();
  soon();
}

function renderPeople() {
  const select = $("user");
  if (select.options.length !== state.people.length) {
    select.replaceChildren(...state.people.map((p) => {
      const option = el("option", null, p.name);
      option.value = p.id;
      return option;
    }));
  }
  select.value = me;
  const person = state.people.find((p) => p.id === me);
  $("roles").textContent = person ? `${person.title} \u00b7 roles: ${person.roles.map((r) => r.replace("_", " ")).join(", ")}` : "";
}

// A file shared into a thread (an alert's chart) is shown in that thread, under its parent message.
let shownCount = 0;

function renderMessages(ctx) {
  const list = $("messages");
  // Follow the conversation: new messages (or being at the bottom already) scroll to the newest.
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80 || state.messages.length > shownCount;
  shownCount = state.messages.length;
  const nodes = new Map();
  const top = [];
  state.messages.forEach((m) => {
    const parent = m.thread_ts && m.thread_ts !== m.ts && m.files?.length ? nodes.get(m.thread_ts) : null;
    const node = message(m, ctx);
    if (parent) threadOf(parent).append(node);
    else { top.push(node); nodes.set(m.ts, node); }
  });
  list.replaceChildren(...top);
  if (!state.messages.length) list.append(el("div", "empty", "No messages yet. Type a command below, e.g. /halt status"));
  if (atBottom) {
    list.scrollTop = list.scrollHeight;
    // A chart loads after the messages are laid out: keep the newest in view once it has.
    list.querySelectorAll("img").forEach((img) => {
      if (!img.complete) img.addEventListener("load", () => { list.scrollTop = list.scrollHeight; }, { once: true });
    });
  }
}

function message(m, ctx) {
  const node = el("div", "msg" + (m.ephemeral ? " ephemeral" : "") + (m.kind === "command" ? " command" : ""));
  node.dataset.ts = m.ts;
  const author = ctx.names[m.user] || m.user;
  const isBot = m.user === state.bot.id;
  node.append(el("div", "avatar" + (isBot ? " bot" : ""), isBot ? "\ud83e\udd16" : author.slice(0, 2).toUpperCase()));
  const body = el("div", "msg-body");
  const head = el("div", "msg-head");
  head.append(el("span", "author", author));
  if (isBot) head.append(el("span", "badge", "APP"));
  head.append(el("span", "time", new Date(parseFloat(m.ts) * 1000).toLocaleTimeString()));
  if (m.edited) head.append(el("span", "edited", "(edited)"));
  if (m.ephemeral) head.append(el("span", "only-you", "Only visible to you"));
  body.append(head);
  if (m.kind === "command") body.append(el("div", "command-text", m.text));
  else if (m.blocks && m.blocks.length) body.append(renderBlocks(m.blocks, { ...ctx, message: m }));
  else body.append(mrkdwn(m.text, ctx));
  (m.files || []).forEach((file) => body.append(fileNode(file)));
  node.append(body);
  return node;
}

function threadOf(parent) {
  let thread = parent.querySelector(":scope > .msg-body > .thread");
  if (!thread) {
    thread = el("div", "thread");
    thread.append(el("div", "thread-label", "In thread"));
    parent.querySelector(":scope > .msg-body").append(thread);
  }
  return thread;
}

// An image (a chart) is shown, and opens full size; any other file is a download chip.
function fileNode(file) {
  const url = `/api/file?id=${encodeURIComponent(file.id)}`;
  const size = typeof file.size === "number" ? ` (${Math.max(1, Math.round(file.size / 1024))} KB)` : "";
  const chip = el("a", "file", `\ud83d\udcce ${file.title || file.name}${size}`);
  chip.href = url;
  chip.target = "_blank";
  chip.rel = "noopener";
  if (!file.image) return chip;
  const figure = el("figure", "file-image");
  const img = el("img");
  img.src = url;
  img.alt = file.alt || file.title || file.name;
  img.addEventListener("error", () => figure.replaceChildren(el("div", "file", `\ud83d\udcce ${file.name}: no longer available (files are not kept across restarts)`)));
  const open = el("a");
  open.href = url;
  open.target = "_blank";
  open.rel = "noopener";
  open.append(img);
  figure.append(open, el("figcaption", null, file.title || file.name));
  return figure;
}

// A button: its confirm dialog first (when it has one), then the click goes to the bot.
function pressed(element, node) {
  const ts = node.closest(".msg")?.dataset.ts;
  const send = async () => {
    node.disabled = true;
    try {
      await api("/api/click", { user: me, action_id: element.action_id, value: element.value || "", message_ts: ts });
      showError("");
      soon();
    } catch (err) {
      showError(err.message);
      node.disabled = false;
    }
  };
  if (element.confirm) confirmDialog(element.confirm, send);
  else send();
}

function confirmDialog(confirm, onConfirm) {
  const dialog = $("confirm");
  $("confirm-title").textContent = emojify(confirm.title?.text || "Are you sure?");
  $("confirm-text").replaceChildren(mrkdwn(confirm.text?.text || "", context()));
  const yes = $("confirm-yes");
  yes.textContent = confirm.confirm?.text || "Yes";
  yes.className = "bk-button " + (confirm.style === "danger" ? "danger" : "primary");
  $("confirm-no").textContent = confirm.deny?.text || "Cancel";
  const close = () => { dialog.hidden = true; yes.onclick = null; dialog.onkeydown = null; };
  yes.onclick = () => { close(); onConfirm(); };
  $("confirm-no").onclick = close;
  dialog.onkeydown = (event) => { if (event.key === "Escape") close(); };
  dialog.hidden = false;
  yes.focus();
}

async function setDrill(name, on) {
  try { await api("/api/drill", { name, on }); showError(""); soon(); } catch (err) { showError(err.message); soon(); }
}

async function deployNew() {
  const button = $("deploy");
  button.disabled = true;
  try { await api("/api/deploy", {}); showError(""); soon(); } catch (err) { showError(err.message); }
  finally { button.disabled = false; }
}

async function startScenario(name) {
  try { await api("/api/scenario", { name }); showError(""); soon(); } catch (err) { showError(err.message); }
}

// The composer: usage hints of the four commands while typing one, Enter sends.
function renderHints() {
  const text = $("composer-input").value;
  const hints = $("hints");
  if (!state || !text.startsWith("/")) { hints.hidden = true; return; }
  const typed = text.split(" ")[0];
  const shown = state.commands.filter((c) => c.command.startsWith(typed) || typed.startsWith(c.command));
  hints.replaceChildren(...shown.map((c) => {
    const row = el("div", "hint");
    row.append(el("b", null, c.command), " ", el("span", "hint-usage", c.hint), el("div", "hint-about", c.description));
    row.addEventListener("mousedown", (event) => {
      event.preventDefault();
      $("composer-input").value = c.command + " ";
      $("composer-input").focus();
      renderHints();
    });
    return row;
  }));
  hints.hidden = !shown.length;
}

async function send(event) {
  event.preventDefault();
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text) return;
  input.disabled = true;
  try {
    await api("/api/command", { user: me, text });
    input.value = "";
    showError("");
    soon();
  } catch (err) {
    showError(err.message);
  } finally {
    input.disabled = false;
    input.focus();
    renderHints();
  }
}

$("composer").addEventListener("submit", send);
$("composer-input").addEventListener("input", renderHints);
$("composer-input").addEventListener("blur", () => { $("hints").hidden = true; });
$("composer-input").addEventListener("focus", renderHints);
$("user").addEventListener("change", (event) => {
  me = event.target.value;
  localStorage.setItem("workspace.user", me);
  last = "";
  if (tab === "home") openTab("home");
  else poll();
});
$("home-tab").addEventListener("click", () => openTab("home"));
$("deploy").addEventListener("click", deployNew);
$("channel-name").addEventListener("click", () => openTab("channel"));
poll();
