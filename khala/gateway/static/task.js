// The task page (/tasks/<id>): every field of GET /api/task, links to the full texts and the
// zips (file= downloads), per-step reports; refreshed until the task is done; cancel.
import {
  cancelMessage, cancelTask, el, fileUrl, getJSON, isId, markLoaded, poll, RESULTS, say,
  statusBadge, timeEl,
} from "./common.js";

const REFRESH_MS = 1000;
const REASONS = {
  ok: "ok",
  nonzero_exit: "non-zero exit",
  signaled: "killed by a signal",
  time_limit: "CPU time limit",
  wall_limit: "wall time limit",
  memory_limit: "memory limit",
  output_limit: "output limit",
  pids_limit: "process limit",
  internal_error: "internal error",
  cancelled: "cancelled",
};

const id = decodeURIComponent(location.pathname.split("/")[2] || "");
const message = document.getElementById("message");
const note = document.getElementById("refresh-note");
const cancel = document.getElementById("cancel");
document.getElementById("task-id").textContent = id;
let shown = "";

function fact(list, term, ...value) {
  list.append(el("dt", { text: term }), el("dd", {}, ...value));
}

function download(file, text) {
  return el("a", { class: "download", href: fileUrl(id, file), download: "", text });
}

// A text of the task: shown in a <pre>, with a link to the whole file when there is one.
function textBlock(file, text) {
  if (!text) return el("span", { class: "none", text: "(empty)" });
  const cut = text.endsWith("...");
  const links = el("p", { class: "file-links" },
    cut ? el("span", { class: "cut", text: "Shown cut. " }) : null,
    download(file, cut ? "Download the full text" : "Download"));
  return el("div", { class: "text" }, el("pre", { "data-file": file, text }), links);
}

function archive(file, present) {
  if (!present) return el("span", { class: "none", text: "none" });
  return download(file, `Download ${file}.zip`);
}

function seconds(value) {
  return value === 0 ? "0 (no timeout)" : `${value} s`;
}

function bytes(value) {
  if (value === null || value === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(value);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  const shown = unit === 0 ? `${n}` : n.toFixed(1);
  return `${shown} ${units[unit]} (${value} bytes)`;
}

function optional(list, term, value, format = String) {
  if (value !== null && value !== undefined) fact(list, term, format(value));
}

function renderSummary(task) {
  const list = document.getElementById("summary");
  list.replaceChildren();
  fact(list, "Id", el("span", { class: "mono", text: task.id }));
  fact(list, "User", String(task.user));
  fact(list, "Added", timeEl(task.add_time));
  fact(list, "Status", statusBadge(task.status));
  fact(list, "Done", task.done ? "yes" : "no");
  fact(list, "Executor", task.executor || "—");
  fact(list, "Last report", timeEl(task.report_time));
}

function renderCompile(c) {
  const list = document.getElementById("compile");
  list.replaceChildren();
  if (!c) return fact(list, "Compile", "—");
  fact(list, "Source", archive("compile_source", c.source));
  fact(list, "Command", textBlock("compile_command", c.command));
  fact(list, "Timeout", seconds(c.timeout));
  optional(list, "Memory limit", c.memory_limit, bytes);
}

function renderExecute(x) {
  const list = document.getElementById("execute");
  list.replaceChildren();
  if (!x) return fact(list, "Execute", "—");
  fact(list, "Data", archive("execute_data", x.data));
  fact(list, "Input", textBlock("execute_input", x.input));
  fact(list, "Command", textBlock("execute_command", x.execute_command));
  fact(list, "Timeout", seconds(x.execute_timeout));
  fact(list, "Expected output", textBlock("execute_standard", x.execute_standard));
  optional(list, "Memory limit", x.memory_limit, bytes);
  optional(list, "CPU limit", x.cpu_limit, (v) => `${v} s`);
  optional(list, "Process limit", x.pids_limit);
  optional(list, "Output limit", x.output_limit, bytes);
  optional(list, "Work area", x.disk_limit, bytes);
}

function exitText(step) {
  if (step.signal !== null && step.signal !== undefined) {
    return `signal ${step.signal}${step.core_dump ? " (core dumped)" : ""}`;
  }
  return step.exit_code === null || step.exit_code === undefined ? "—" : `exit code ${step.exit_code}`;
}

function stepTable(name, step) {
  const rows = [
    ["Reason", REASONS[step.reason] || String(step.reason)],
    ["Exit", exitText(step)],
    ["CPU time", `${step.time} s`],
    ["Wall time", `${step.wall_time} s`],
    ["Peak memory", bytes(step.memory)],
  ];
  const list = el("dl", { class: "facts step", "data-step": name });
  for (const [term, value] of rows) fact(list, term, value);
  return el("div", { class: "step-block" }, el("h3", { text: `${name} step` }), list);
}

function renderResult(result) {
  const box = document.getElementById("result");
  if (!result) {
    box.replaceChildren(el("p", { class: "none", text: "No result yet: the task is not done." }));
    return;
  }
  const outputs = el("dl", { class: "facts" });
  fact(outputs, "Compile output", textBlock("compile_output", result.compile_output));
  fact(outputs, "Compile error", textBlock("compile_error", result.compile_error));
  fact(outputs, "Execute output", textBlock("execute_output", result.execute_output));
  fact(outputs, "Execute error", textBlock("execute_error", result.execute_error));
  const steps = el("div", { class: "steps" });
  if (result.compile) steps.append(stepTable("Compile", result.compile));
  if (result.execute) steps.append(stepTable("Execute", result.execute));
  box.replaceChildren(steps, outputs);
}

function render(task) {
  const text = JSON.stringify(task);
  if (text === shown) return;
  shown = text;
  document.getElementById("status").replaceChildren(statusBadge(task.status));
  cancel.hidden = task.done;
  renderSummary(task);
  renderCompile(task.compile);
  renderExecute(task.execute);
  renderResult(task.result);
  document.getElementById("task").hidden = false;
}

async function load() {
  let answer;
  try {
    answer = await getJSON("/api/task", { id });
  } catch (error) {
    say(message, `The task could not be loaded: ${error.message}.`, "error");
    markLoaded("error");
    throw error;
  }
  if (answer.result !== 0 || !answer.task) {
    const text = answer.result === 2 ? "No such task (result 2)."
      : answer.result === 4 ? "This is not a valid task id: 24 hex characters (result 4)."
        : RESULTS[answer.result] || `Result ${answer.result}.`;
    say(message, text, "error");
    markLoaded("error");
    return answer.result === 1;
  }
  if (message.dataset.kind === "error") say(message, "");
  render(answer.task);
  note.textContent = answer.task.done ? "" : "Not done yet: this page refreshes every second.";
  markLoaded();
  return !answer.task.done;
}

// Live output while the task runs: the API v2 event stream (docs/streaming.md). EventSource
// reconnects by itself with Last-Event-ID, which resumes without loss or duplicates. Only the
// last LIVE_KEEP characters are kept on the page.
const LIVE_KEEP = 256 * 1024;
let live = null;

function followLive() {
  if (live || !isId(id)) return;
  live = new EventSource(`/api/v2/tasks/${encodeURIComponent(id)}/events`);
  let out = null;  // the <pre>, made on the first output (a hidden one would be in the way)
  const append = (text) => {
    if (!out) {
      out = el("pre", { id: "live-output" });
      document.getElementById("live-box").replaceChildren(out);
      document.getElementById("live").hidden = false;
    }
    const all = out.textContent + text;
    out.textContent = all.length > LIVE_KEEP ? all.slice(all.length - LIVE_KEEP) : all;
  };
  live.addEventListener("output", (event) => {
    const data = JSON.parse(event.data);
    if (typeof data.text === "string") append(data.text);
  });
  live.addEventListener("dropped", (event) => {
    const data = JSON.parse(event.data);
    append(`\n[${data.length} bytes of ${data.stream} not shown]\n`);
  });
  live.addEventListener("task", () => {
    live.close();
    load().catch(() => {});
  });
}

const refresher = isId(id) ? poll(async () => {
  const more = await load();
  if (more && shown && !JSON.parse(shown).done) followLive();
  return more;
}, REFRESH_MS) : null;
if (!refresher) {
  say(message, "This is not a valid task id: 24 hex characters.", "error");
  markLoaded("error");
}

cancel.addEventListener("click", async () => {
  cancel.disabled = true;
  try {
    say(message, cancelMessage(id, await cancelTask(id)), "info");
  } catch (error) {
    say(message, `The task could not be cancelled: ${error.message}.`, "error");
  }
  cancel.disabled = false;
  refresher.now();
});
