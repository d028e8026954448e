// host-runner dashboard: polls the API with the bearer token kept in sessionStorage and draws the panels.
// Everything is built with textContent (never innerHTML): task ids, prompts and output are untrusted text.
"use strict";

const TOKEN_KEY = "host-runner-token";
const POLL_MS = 1000;
const REQUEST_TIMEOUT_MS = 5000;
const PAGE_SIZE = 25;          // rows per page: the page never draws more than this per list
const TASK_LIMIT = 1000;       // the API's maximum for GET /tasks
const LOG_CHUNK = 65536;       // bytes per log request
const LOG_KEEP = 200000;       // characters of output kept in the page per stream

const state = {
  tasks: [], actors: null, selected: null, record: null,
  pages: { active: 0, finished: 0 },
  logs: null, polling: false, timer: null, lastError: null, truncated: false,
};

const $ = (id) => document.getElementById(id);

class Unauthorized extends Error {}
class Disconnected extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const stored = token();
  if (stored) headers["Authorization"] = "Bearer " + stored;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeout || REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers, signal: controller.signal, cache: "no-store" }));
  } catch (error) {
    throw new Disconnected(String(error));
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 401) throw new Unauthorized("the token was refused");
  if (response.status >= 502) throw new Disconnected("the runner answered " + response.status);
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return body;
}

// --- helpers ------------------------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

function parseTime(value) {
  if (!value) return null;
  // The API writes microseconds; trim to milliseconds so every browser parses it.
  const ms = Date.parse(String(value).replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(ms) ? null : ms;
}

function human(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 1) return seconds.toFixed(2) + "s";
  if (seconds < 60) return seconds.toFixed(1) + "s";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m" + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
  return Math.floor(seconds / 3600) + "h" + String(Math.floor((seconds % 3600) / 60)).padStart(2, "0") + "m";
}

function duration(task) {
  const start = parseTime(task.started_at), end = parseTime(task.finished_at);
  return start !== null && end !== null ? (end - start) / 1000 : null;
}

function groupOf(task) {
  if (task.group) return task.group;  // agent tasks: the group whose one-at-a-time queue they are in
  const ws = task.workspace;
  if (!ws) return "";
  return ws.git_branch || ws.worktree_path || (ws.project_id !== undefined ? "project " + ws.project_id : "");
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// --- connection state ---------------------------------------------------------------------------------------
function setConnection(kind, text) {
  document.body.dataset.connection = kind;
  $("connection").textContent = text;
  $("disconnected").hidden = kind !== "disconnected";
}

function showLogin(message) {
  stopPolling();
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setConnection("locked", "token needed");
  $("token").focus();
}

function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = !token();
}

// --- polling ------------------------------------------------------------------------------------------------
function stopPolling() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  state.polling = false;
}

function startPolling() {
  stopPolling();
  state.polling = true;
  poll();
}

async function poll() {
  if (!state.polling) return;
  try {
    const began = performance.now();
    const [tasks, actors] = await Promise.all([fetchTasks(), apiJson("/debug/actors?timeout=1")]);
    document.body.dataset.fetchMs = (performance.now() - began).toFixed(1);
    state.tasks = tasks;
    state.actors = actors;
    if (state.selected) await refreshDetail();
    showDashboard();
    setConnection("connected", "connected");
    // Said as "last answer" so that, once disconnected, it tells how old the (hidden) data is.
    $("updated").textContent = "last answer " + new Date().toLocaleTimeString();
    render();
  } catch (error) {
    if (error instanceof Unauthorized) {
      const hadToken = token() !== null;
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(hadToken ? "The token was refused." : "This runner needs its API token.");
      return;
    }
    if (error instanceof Disconnected) {
      showDashboard();
      setConnection("disconnected", "disconnected");
    } else {
      $("updated").textContent = "error: " + error.message;
    }
  }
  if (state.polling) state.timer = setTimeout(poll, POLL_MS);
}

async function fetchTasks() {
  // brief=true: no output tails or agent outputs in the list (the detail view reads them for one task).
  const newest = await apiJson("/tasks?brief=true&limit=" + TASK_LIMIT);
  state.truncated = newest.count >= TASK_LIMIT;
  if (!state.truncated) return newest.tasks;
  // More tasks than one list holds: the running and queued ones are asked for on their own, so an old task
  // still running (or a long queue) never drops off the page behind newer finished ones.
  const [running, queued] = await Promise.all(["running", "queued"].map(
    (status) => apiJson("/tasks?brief=true&status=" + status + "&limit=" + TASK_LIMIT)));
  const seen = new Set(newest.tasks.map((task) => task.task_id));
  const extra = running.tasks.concat(queued.tasks).filter((task) => !seen.has(task.task_id));
  return newest.tasks.concat(extra);
}

// --- panels -------------------------------------------------------------------------------------------------
function render() {
  const began = performance.now();
  const active = state.tasks.filter((t) => t.status === "running" || t.status === "queued");
  const finished = state.tasks.filter((t) => t.status !== "running" && t.status !== "queued")
    .sort((a, b) => (parseTime(b.finished_at) || 0) - (parseTime(a.finished_at) || 0));
  renderList("active", active, activeRow);
  renderList("finished", finished, finishedRow);
  renderChart(state.tasks);
  renderActors(state.actors);
  renderReservations(state.actors);
  // Exposed for bench/dashboard.py: how long one redraw of every panel took.
  document.body.dataset.renderMs = (performance.now() - began).toFixed(1);
}

function renderList(name, tasks, rowOf) {
  const pages = Math.max(1, Math.ceil(tasks.length / PAGE_SIZE));
  state.pages[name] = Math.min(state.pages[name], pages - 1);
  const page = state.pages[name];
  const shown = tasks.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  $(name + "-count").textContent = "(" + tasks.length + (tasks.length >= TASK_LIMIT ? "+" : "") + ")";
  replaceRows(document.querySelector("#" + name + "-tasks tbody"), shown.map(rowOf));
  const pager = $(name + "-pager");
  if (pages <= 1) { pager.replaceChildren(); return; }
  const previous = el("button", { type: "button", disabled: page === 0, className: "previous" }, "‹ newer");
  const next = el("button", { type: "button", disabled: page >= pages - 1, className: "next" }, "older ›");
  previous.addEventListener("click", () => { state.pages[name] -= 1; render(); });
  next.addEventListener("click", () => { state.pages[name] += 1; render(); });
  pager.replaceChildren(previous, el("span", { class: "page" }, "page " + (page + 1) + " of " + pages), next);
}

function taskRow(task, cells) {
  const row = el("tr", { "data-task-id": task.task_id, class: task.task_id === state.selected ? "selected" : "",
    tabIndex: 0 }, el("td", { title: task.task_id }, task.task_id), ...cells);
  row.addEventListener("click", () => select(task.task_id));
  row.addEventListener("keydown", (event) => { if (event.key === "Enter") select(task.task_id); });
  return row;
}

function statusCell(task) {
  // A queued task says where it waits: its place in the runner's queue, and in its agent group's.
  let text = task.status;
  if (task.status === "queued" && task.queue_position) {
    text += " #" + task.queue_position + (task.group_queue_position ? " (group #" + task.group_queue_position + ")" : "");
  }
  if (task.closing) text += " · closing";
  return el("td", { class: "status status-" + task.status }, text);
}

function activeRow(task) {
  const since = parseTime(task.started_at || task.created_at);
  const age = since === null ? "" : human((Date.now() - since) / 1000);
  const where = task.container_id ? String(task.container_id).slice(0, 12) : (task.pid ?? "");
  return taskRow(task, [statusCell(task), el("td", {}, task.executor), el("td", {}, task.execution_mode),
    el("td", {}, groupOf(task)), el("td", {}, age), el("td", {}, String(where))]);
}

function finishedRow(task) {
  const end = parseTime(task.finished_at);
  return taskRow(task, [statusCell(task), el("td", {}, task.exit_code ?? ""), el("td", {}, human(duration(task))),
    el("td", {}, end === null ? "" : new Date(end).toLocaleTimeString())]);
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

function renderChart(tasks) {
  const now = Date.now();
  const started = new Array(60).fill(0), finished = new Array(60).fill(0);
  const durations = [];
  for (const task of tasks) {
    const start = parseTime(task.started_at), end = parseTime(task.finished_at);
    if (start !== null && now - start < 3600000) started[59 - Math.floor((now - start) / 60000)] += 1;
    if (end !== null && now - end < 3600000) {
      finished[59 - Math.floor((now - end) / 60000)] += 1;
      if (start !== null) durations.push((end - start) / 1000);
    }
  }
  const canvas = $("chart"), context = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, top = Math.max(1, ...started, ...finished);
  context.clearRect(0, 0, width, height);
  context.strokeStyle = "#d9dde3";
  context.beginPath(); context.moveTo(0, height - 14.5); context.lineTo(width, height - 14.5); context.stroke();
  const slot = width / 60, bar = Math.max(1, slot / 2 - 1), usable = height - 30;
  for (let minute = 0; minute < 60; minute += 1) {
    const x = minute * slot;
    context.fillStyle = "#0b5cad";
    context.fillRect(x, height - 15 - (started[minute] / top) * usable, bar, (started[minute] / top) * usable);
    context.fillStyle = "#1a7f37";
    context.fillRect(x + bar + 1, height - 15 - (finished[minute] / top) * usable, bar, (finished[minute] / top) * usable);
  }
  context.fillStyle = "#6a7383";
  context.font = "11px sans-serif";
  context.fillText("-60 min", 2, height - 2);
  context.fillText("now", width - 24, height - 2);
  context.fillText("max " + top + "/min", 2, 11);
  durations.sort((a, b) => a - b);
  $("chart").dataset.started = String(started.reduce((a, b) => a + b, 0));
  $("chart").dataset.finished = String(finished.reduce((a, b) => a + b, 0));
  $("percentiles").textContent = (durations.length
    ? durations.length + " finished in the last hour; duration p50 " + human(percentile(durations, 50)) +
      ", p90 " + human(percentile(durations, 90)) + ", p99 " + human(percentile(durations, 99))
    : "no task finished in the last hour") +
    (state.truncated ? " (counted over the newest " + TASK_LIMIT + " tasks)" : "");
}

function renderActors(report) {
  const tree = $("actor-tree");
  if (!report) { tree.replaceChildren(); return; }
  $("actor-count").textContent = "(" + report.count + ")";
  const byClass = (name) => report.actors.filter((actor) => actor.class === name);
  const supervisor = report.supervisor;
  // One actor per run: TaskActor, or a subclass of it such as the agent executor's AgentTaskActor.
  const isTaskActor = (actor) => /TaskActor$/.test(actor.class);
  const taskActors = report.actors.filter(isTaskActor);
  const taskItems = taskActors.map((actor) => {
    const s = actor.state || {};
    const item = el("li", { "data-actor": "TaskActor", "data-class": actor.class, "data-task-id": s.task_id ?? "" },
      el("span", { class: "cls" }, actor.class + " "), (s.task_id ?? actor.urn) + " · " + (s.phase ?? s.status ?? "?") +
      (s.pid ? " · pid " + s.pid : "") + (s.container_id ? " · container " + String(s.container_id).slice(0, 12) : "") +
      (s.cancel_requested ? " · cancel requested" : "") + (s.group ? " · group " + s.group : "") +
      (s.frames !== undefined ? " · " + s.frames + " frame(s)" : "") + (s.closing ? " · closing" : "") +
      (actor.inbox_depth ? " · inbox " + actor.inbox_depth : ""));
    item.addEventListener("click", () => s.task_id && select(s.task_id));
    return item;
  });
  const queue = supervisor ? supervisor.queue.map((entry) => el("li", { "data-queued": entry.task_id }, "queued: " + entry.task_id)) : [];
  const supervisorText = supervisor
    ? " running " + supervisor.running + "/" + supervisor.max_concurrency + ", queued " + supervisor.queued +
      (supervisor.accepting ? "" : " · not accepting")
    : " (did not answer)";
  const lanes = (report.callback_lanes || []).map((lane) => el("li", { "data-lane": lane.task_id },
    "lane " + lane.task_id + "/" + lane.run_id + " · pending " + lane.pending + (lane.sending ? " · sending" : "") +
    (lane.attempts ? " · attempts " + lane.attempts : "") + (lane.last_error ? " · " + lane.last_error : "")));
  const others = report.actors.filter((a) => !isTaskActor(a) &&
    !["SupervisorActor", "CallbackActor", "WorktreeRegistryActor"].includes(a.class));
  const root = el("ul", {},
    el("li", { "data-actor": "SupervisorActor" }, el("span", { class: "cls" }, "SupervisorActor"), supervisorText,
      el("ul", {}, ...taskItems, ...queue)),
    el("li", { "data-actor": "CallbackActor" }, el("span", { class: "cls" }, "CallbackActor"),
      report.callback_lanes === null ? " (did not answer)" : " " + report.callback_lanes.length + " lane(s)",
      el("ul", {}, ...lanes)),
    el("li", { "data-actor": "WorktreeRegistryActor" }, el("span", { class: "cls" }, "WorktreeRegistryActor"),
      report.reservations === null ? " (did not answer)" : " " + report.reservations.length + " reservation(s)"),
    ...others.map((a) => el("li", { "data-actor": a.class }, el("span", { class: "cls" }, a.class))),
    ...report.not_answering.map((a) => el("li", { class: "error" }, a.class + " not answering: " + (a.problem || ""))));
  tree.replaceChildren(root);
}

function renderReservations(report) {
  const rows = ((report && report.reservations) || []).map((r) => el("tr", { "data-task-id": r.task_id },
    el("td", {}, r.task_id + "/" + r.run_id), el("td", {}, r.kind), el("td", {}, r.label), el("td", { title: r.key }, r.key)));
  replaceRows(document.querySelector("#reservations tbody"), rows);
}

// --- task detail --------------------------------------------------------------------------------------------
function select(taskId) {
  state.selected = taskId;
  state.record = null;
  state.logs = { run: null, stdout: 0, stderr: 0 };
  $("stdout").textContent = "";
  $("stderr").textContent = "";
  $("cancel-confirm").hidden = true;
  $("cancel-result").textContent = "";
  $("message-result").textContent = "";
  $("detail").hidden = false;
  $("detail-id").textContent = taskId;
  render();
  refreshDetail().catch(() => {});
}

async function refreshDetail() {
  const taskId = state.selected;
  if (!taskId) return;
  let record;
  try {
    record = await apiJson("/tasks/" + encodeURIComponent(taskId));
  } catch (error) {
    if (error.status === 404) { $("detail-status").textContent = "(gone)"; return; }
    throw error;
  }
  if (taskId !== state.selected) return;
  state.record = record;
  if (state.logs.run !== record.run_id) {
    state.logs = { run: record.run_id, stdout: 0, stderr: 0 };
    $("stdout").textContent = "";
    $("stderr").textContent = "";
  }
  renderDetail(record);
  await Promise.all([followLog(record, "stdout"), followLog(record, "stderr")]);
}

async function followLog(record, stream) {
  // Polling with offsets rather than follow=true: a followed request holds one of the runner's threads.
  for (let round = 0; round < 8; round += 1) {
    const offset = state.logs[stream];
    const path = "/tasks/" + encodeURIComponent(record.task_id) + "/logs?stream=" + stream + "&offset=" + offset +
      "&limit=" + LOG_CHUNK + "&run_id=" + encodeURIComponent(record.run_id);
    const response = await api(path);
    if (response.status === 404) return;  // no output yet
    if (!response.ok) return;
    const text = await response.text();
    if (state.selected !== record.task_id || state.logs.run !== record.run_id) return;
    // A click and the poll may both be reading this stream: only the first answer for an offset is used.
    if (state.logs[stream] !== offset) return;
    const next = Number(response.headers.get("X-Next-Offset") || offset);
    if (text) {
      const pre = $(stream);
      const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      let content = pre.textContent + text;
      if (content.length > LOG_KEEP) content = "…" + content.slice(content.length - LOG_KEEP);
      pre.textContent = content;
      if (stick) pre.scrollTop = pre.scrollHeight;
    }
    state.logs[stream] = next;
    const size = Number(response.headers.get("X-Log-Size") || next);
    if (stream === "stdout") {
      $("stdout-state").textContent = response.headers.get("X-Task-Status") === "running" ? "(following)" : "";
    }
    if (next >= size || next === offset) return;
  }
}

function renderDetail(record) {
  const status = $("detail-status");
  status.textContent = record.status;
  status.className = "status status-" + record.status;
  const fields = ["task_id", "run_id", "status", "message", "executor", "execution_mode", "queue_position",
    "group", "group_queue_position", "pid", "container_id", "exit_code", "created_at", "started_at", "finished_at",
    "timeout_seconds", "failure_reason", "cancel_reason", "session_id", "resumed_session_id", "new_session_id", "frames", "outputs_dropped", "invalid_frames",
    "last_output_at", "closing"];
  const rows = fields.filter((f) => record[f] !== null && record[f] !== undefined)
    .map((f) => el("tr", {}, el("th", {}, f), el("td", { "data-field": f, title: String(record[f]) }, String(record[f]))));
  if (record.worktree_follow_up) {
    const follow = record.worktree_follow_up;
    const text = "continues run " + follow.run_id + " (" + (follow.branch || "") + " at " + follow.commit + ")";
    rows.push(el("tr", {}, el("th", {}, "follow-up"), el("td", { "data-field": "worktree_follow_up", title: text }, text)));
  }
  if (record.workspace) {
    rows.push(el("tr", {}, el("th", {}, "workspace"), el("td", { title: JSON.stringify(record.workspace) }, JSON.stringify(record.workspace))));
  }
  replaceRows(document.querySelector("#detail-record tbody"), rows);
  const callbacks = (record.callbacks || []).map((event) => el("tr", {},
    el("td", {}, event.sequence ?? ""), el("td", {}, event.status ?? ""), el("td", {}, event.state ?? ""),
    el("td", {}, event.attempts ?? ""), el("td", {}, event.last_error ?? "")));
  replaceRows(document.querySelector("#detail-callbacks tbody"),
    callbacks.length ? callbacks : [el("tr", {}, el("td", { colSpan: 5, class: "muted" }, "no callbacks"))]);
  const active = record.status === "running" || record.status === "queued";
  $("cancel").disabled = !active;
  if (!active) $("cancel-confirm").hidden = true;
  const agent = record.executor === "agent";
  // The runner takes messages (and _close) only while the agent runs and has not been told to close.
  $("message-form").hidden = !(agent && record.status === "running" && !record.closing);
  $("answers-panel").hidden = !agent;
  if (agent) renderAnswers(record);
  // An agent CLI in its machine-readable mode (codex --json, claude stream-json) counts its events.
  const cli = record.events !== undefined && record.events !== null;
  $("cli-panel").hidden = !cli;
  if (cli) renderAgentCli(record);
}

function renderAgentCli(record) {
  // Model output: every piece goes in as text (el() appends text nodes), never as markup.
  $("cli-final").textContent = record.final_message ?? (record.status === "running" ? "(working)" : "(none)");
  const usage = record.usage;
  $("cli-usage").textContent = usage
    ? "input " + usage.input_tokens + " (cached " + usage.cached_input_tokens + ") · output " + usage.output_tokens +
      (record.cost_usd !== undefined && record.cost_usd !== null ? " · $" + record.cost_usd : "")
    : "(none yet)";
  const commands = record.commands || [];
  const total = record.commands_count ?? commands.length;
  $("cli-commands-note").textContent = total > commands.length
    ? commands.length + " newest of " + total : String(commands.length);
  const rows = commands.map((command) => el("tr", { class: command.exit_code === 0 ? "" : "failed" },
    el("td", {}, command.exit_code === null || command.exit_code === undefined ? "?" : String(command.exit_code)),
    el("td", { title: command.command }, command.command)));
  replaceRows(document.querySelector("#cli-commands tbody"),
    rows.length ? rows : [el("tr", {}, el("td", { colSpan: 2, class: "muted" }, "no commands"))]);
  const files = record.files_changed || [];
  const filesTotal = record.files_changed_count ?? files.length;
  $("cli-files-note").textContent = filesTotal > files.length ? files.length + " of " + filesTotal : String(files.length);
  $("cli-files").replaceChildren(...(files.length
    ? files.map((file) => el("li", {}, file.kind + " " + file.path))
    : [el("li", { class: "muted" }, "none")]));
}

function renderAnswers(record) {
  // The agent's result frames as the record keeps them (the newest ones; all of them are in stdout.log).
  const outputs = (record.outputs || []).filter((output) => output.result !== null && output.result !== undefined);
  const first = (record.frames || 0) - (record.outputs || []).length;
  const items = outputs.map((output, index) => el("li", { class: output.status === "error" ? "error" : "" },
    typeof output.result === "string" ? output.result : JSON.stringify(output.result)));
  $("answers-note").textContent = (record.frames || 0) + " frame(s)" +
    (first > 0 ? ", the oldest " + first + " only in stdout.log" : "") + (record.closing ? " · closing" : "");
  const list = $("answers");
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "no answer yet")]));
  if (stick) list.scrollTop = list.scrollHeight;
}

async function cancelSelected() {
  const taskId = state.selected;
  $("cancel-confirm").hidden = true;
  $("cancel-result").textContent = "canceling…";
  try {
    const record = await apiJson("/tasks/" + encodeURIComponent(taskId) + "/cancel",
      { method: "POST", timeout: 60000 });
    $("cancel-result").textContent = "cancel answered: " + record.status;
    if (taskId === state.selected) renderDetail(record);
  } catch (error) {
    $("cancel-result").textContent = "cancel failed: " + error.message;
  }
}

async function sendMessage(event) {
  event.preventDefault();
  const text = $("message").value;
  if (!text.trim() || !state.selected) return;
  $("message-result").textContent = "sending…";
  try {
    await apiJson("/tasks/" + encodeURIComponent(state.selected) + "/messages", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
    });
    $("message").value = "";
    $("message-result").textContent = "sent; the answer appears under Agent answers";
  } catch (error) {
    $("message-result").textContent = "not sent: " + error.message;
  }
}

async function closeAgent() {
  const taskId = state.selected;
  $("message-result").textContent = "closing…";
  try {
    await apiJson("/tasks/" + encodeURIComponent(taskId) + "/close", { method: "POST" });
    $("message-result").textContent = "asked the agent to finish (_close)";
  } catch (error) {
    $("message-result").textContent = "close failed: " + error.message;
  }
}

// --- start --------------------------------------------------------------------------------------------------
function init() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) { $("login-error").textContent = "Enter the token."; return; }
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    $("login-error").textContent = "";
    setConnection("connecting", "connecting…");
    startPolling();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(""); });
  $("detail-close").addEventListener("click", () => { state.selected = null; $("detail").hidden = true; render(); });
  $("cancel").addEventListener("click", () => { $("cancel-confirm").hidden = false; });
  $("cancel-no").addEventListener("click", () => { $("cancel-confirm").hidden = true; });
  $("cancel-yes").addEventListener("click", cancelSelected);
  $("message-form").addEventListener("submit", sendMessage);
  $("agent-close").addEventListener("click", closeAgent);
  // Ctrl+Enter sends, as in most chat boxes; a plain Enter is a new line.
  $("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("message-form").requestSubmit();
  });
  setConnection("connecting", "connecting…");
  // Without a stored token the first poll tells whether this runner needs one (401) or has none set.
  startPolling();
}

document.addEventListener("DOMContentLoaded", init);
