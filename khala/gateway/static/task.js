// The task page: the verdict first (colour and words), score, time and memory; live output while
// the task runs (API v2's event stream); then the test cases with a diff for a failed one, the
// outputs, the source (highlighted) and the details. Everything from API v2.

import {
  apiKey, authHeaders, el, fmtBytes, fmtSeconds, fmtTime, isRef, markLoaded, outcomeBadge, say,
  usage, v2, v2Error, VERDICTS,
} from "./common.js";
import { aroundChanges, diffLines } from "./diff.js";
import { codeBlock } from "./highlight.js";

const SHOWN = 64 * 1024; // characters of an output shown on the page (the rest: the raw link)

const message = document.getElementById("message");
const ref = decodeURIComponent(location.pathname.split("/").pop() || "");
const taskBox = document.getElementById("task");
const live = document.getElementById("live");
const liveOutput = document.getElementById("live-output");
const cancelButton = document.getElementById("cancel");
let finalShown = false;
let stream = null;
let pollTimer = null;

function fact(dl, name, value) {
  dl.append(el("dt", { text: name }), el("dd", {}, value));
}

// A name and its value kept together (a <div> in the <dl>): they wrap as one.
function number(dl, name, value) {
  dl.append(el("div", { class: "number" }, el("dt", { text: name }), el("dd", {}, value)));
}

function seconds(value, fallback) {
  return value ? `${value} s` : fallback;
}

function renderHead(task) {
  document.getElementById("task-id").textContent = task.id;
  document.title = `${task.id} · Khala`;
  const verdict = document.getElementById("verdict");
  verdict.replaceChildren(outcomeBadge(task, true));
  cancelButton.hidden = task.done;
  const numbers = document.getElementById("numbers");
  numbers.replaceChildren();
  const judgement = task.result && task.result.judgement;
  if (judgement) number(numbers, "Score", `${judgement.score} / ${judgement.max_score}`);
  const used = usage(task);
  number(numbers, "Time", task.done ? fmtSeconds(used.time) : "…");
  number(numbers, "Memory", task.done ? fmtBytes(used.memory) : "…");
  number(numbers, "Language", task.compile.language || "command");
  if (task.execute.cases) number(numbers, "Cases", String(task.execute.cases));
}

function renderDetails(task) {
  const dl = document.getElementById("details");
  dl.replaceChildren();
  fact(dl, "Id", el("span", { class: "mono", text: task.id }));
  if (task.seed_id !== task.id) fact(dl, "Seed id", el("span", { class: "mono", text: task.seed_id }));
  fact(dl, "User", String(task.user));
  fact(dl, "Run status", task.status.replace("_", " "));
  fact(dl, "Added", el("time", { datetime: task.add_time, title: task.add_time, text: fmtTime(task.add_time) }));
  fact(dl, "Executor", task.executor || "—");
  const judgement = task.result && task.result.judgement;
  if (judgement && judgement.language) fact(dl, "Compiler", judgement.language);
  if (!task.compile.language) {
    fact(dl, "Compile command", el("code", { text: task.compile.command || "(none)" }));
    fact(dl, "Execute command", el("code", { text: task.execute.command || "(none)" }));
  }
  fact(dl, "Wall time limit", seconds(task.execute.timeout, "the cluster's default"));
  fact(dl, "CPU time limit", seconds(task.execute.cpu_limit, "the cluster's default"));
  fact(dl, "Memory limit", task.execute.memory_limit ? fmtBytes(task.execute.memory_limit) : "the executor's default");
  if (task.execute.compare) fact(dl, "Comparison", task.execute.compare.mode);
  const problem = task.execute.problem;
  if (problem) {
    fact(dl, "Problem", el("a", { href: `/problems/${encodeURIComponent(problem.id)}`,
      text: `${problem.id}, version ${problem.judged || problem.version || "latest"}` }));
  }
  if (judgement && judgement.message) fact(dl, "Message", el("pre", { text: judgement.message }));
}

function diffBlock(expected, got) {
  const rows = aroundChanges(diffLines(expected, got));
  const box = el("div", { class: "diff", role: "group", "aria-label": "Expected (−) and got (+)" },
    el("div", { class: "diff-legend", text: "− expected   + got" }));
  for (const row of rows) {
    const cls = { "-": "del", "+": "add", "…": "skip" }[row.sign] || "same";
    box.append(el("div", { class: `diff-line diff-${cls}` },
      el("span", { class: "diff-sign", "aria-hidden": "true", text: row.sign }),
      el("span", { class: "visually-hidden", text: { del: "expected: ", add: "got: ", skip: "", same: "" }[cls] }),
      el("span", { class: "diff-text", text: row.text === "" ? " " : row.text })));
  }
  return box;
}

// A judged task with groups (subtasks): each group's verdict and score; a group whose
// dependency did not pass shows as skipped.
function renderGroups(task) {
  const judgement = task.result && task.result.judgement;
  const groups = (judgement && judgement.groups) || [];
  if (!groups.length) return;
  const body = document.querySelector("#groups tbody");
  body.replaceChildren();
  for (const g of groups) {
    const v = VERDICTS[g.skipped ? "skipped" : g.verdict] || VERDICTS.internal_error;
    const cases = g.cases.map((i) => String(i + 1)).join(", ");
    body.append(el("tr", { "data-group": g.name, "data-verdict": g.skipped ? "skipped" : g.verdict },
      el("td", { "data-label": "Group", text: g.name }),
      el("td", { "data-label": "Verdict" }, el("span", { class: `status status-${v.cls}` },
        el("span", { class: "mark", "aria-hidden": "true", text: v.mark }), ` ${v.text}`)),
      el("td", { "data-label": "Score", class: "score", text: `${g.score} / ${g.max_score}` }),
      el("td", { "data-label": "Cases", text: cases || "—" })));
  }
  document.getElementById("groups-section").hidden = false;
}

async function renderCases(task) {
  const judgement = task.result && task.result.judgement;
  const section = document.getElementById("cases-section");
  if (!judgement || !judgement.cases.length) return;
  const asked = await v2(`/api/v2/tasks/${ref}/cases`);
  const cases = asked.status === 200 ? asked.body.data : [];
  const body = document.querySelector("#cases tbody");
  body.replaceChildren();
  judgement.cases.forEach((c, index) => {
    const v = VERDICTS[c.verdict] || VERDICTS.internal_error;
    const details = [];
    if (c.message) details.push(el("p", { class: "case-message", text: c.message }));
    if (c.verdict === "wrong_answer" && cases[index]) details.push(diffBlock(cases[index].standard, c.output));
    else if (c.verdict !== "accepted" && c.error) details.push(el("pre", { class: "small-pre", text: c.error }));
    body.append(el("tr", { "data-case": index + 1, "data-verdict": c.verdict },
      el("td", { "data-label": "Case", text: String(index + 1) }),
      el("td", { "data-label": "Verdict" }, el("span", { class: `status status-${v.cls}` },
        el("span", { class: "mark", "aria-hidden": "true", text: v.mark }), ` ${v.text}`)),
      el("td", { "data-label": "Time", text: c.verdict === "skipped" ? "—" : fmtSeconds(c.time) }),
      el("td", { "data-label": "Memory", text: c.verdict === "skipped" ? "—" : fmtBytes(c.memory) }),
      el("td", { "data-label": "Details", class: "case-details" }, ...details)));
  });
  section.hidden = false;
}

async function renderOutputs(task) {
  const box = document.getElementById("outputs");
  box.replaceChildren();
  // A judged task's outputs are per case (the table); the compiler's messages are its own.
  const streams = [["compile", "stderr", "Compiler messages"]];
  if (!task.compile.language) streams.push(["execute", "stdout", "Standard output"], ["execute", "stderr", "Standard error"]);
  for (const [step, name, title] of streams) {
    const path = `/api/v2/tasks/${ref}/outputs/${step}/${name}`;
    const response = await fetch(path, { cache: "no-store", headers: authHeaders() });
    if (!response.ok) continue;
    const text = await response.text();
    if (!text) continue;
    const cut = text.length > SHOWN;
    box.append(el("h3", { text: title }), el("pre", { class: "output", "data-stream": `${step}.${name}`, text: cut ? text.slice(0, SHOWN) : text }),
      el("p", { class: "file-links" }, cut ? el("span", { class: "cut", text: "Shown cut. " }) : null,
        el("a", { href: path, text: "Raw output" })));
  }
  document.getElementById("outputs-section").hidden = !box.childElementCount;
}

async function renderSource(task) {
  if (!task.compile.has_source) return;
  const answer = await v2(`/api/v2/tasks/${ref}/files/compile`);
  if (answer.status !== 200) return;
  const box = document.getElementById("source");
  box.replaceChildren();
  for (const file of answer.body.data.files) {
    box.append(el("h3", { class: "mono", text: file.path }));
    if (file.encoding === "text") box.append(codeBlock(file.content, task.compile.language, file.path));
    else box.append(el("p", { class: "none", text: `${file.size} bytes of binary data` }));
    if (file.cut) box.append(el("p", { class: "cut", text: "Shown cut (the first 256 KiB)." }));
  }
  document.getElementById("source-section").hidden = false;
}

// A task cancelled while it ran gets the output it had moments later (its executor hands the
// stopped run in): the page looks again a few times.
function awaitKeptOutput(task, tries = 10) {
  if (task.status !== "cancelled" || task.result || !task.executor || tries === 0) return;
  setTimeout(async () => {
    const answer = await v2(`/api/v2/tasks/${ref}`);
    if (answer.status !== 200) return;
    if (answer.body.data.result) {
      renderDetails(answer.body.data);
      await renderOutputs(answer.body.data);
    } else {
      awaitKeptOutput(answer.body.data, tries - 1);
    }
  }, 1000);
}

async function showFinal(task) {
  if (finalShown) return;
  finalShown = true;
  awaitKeptOutput(task);
  if (stream) stream.close();
  if (pollTimer) clearTimeout(pollTimer);
  live.hidden = true; // one output box: the recorded outputs below replace the live one
  liveOutput.replaceChildren();
  renderHead(task);
  renderDetails(task);
  renderGroups(task);
  await Promise.all([renderCases(task), renderOutputs(task), renderSource(task)]);
  markLoaded();
}

function appendLive(data) {
  let text = data.text;
  if (text === undefined) text = `[${data.base64 ? "binary output" : ""}]`;
  const span = el("span", { class: data.stream.endsWith("stderr") ? "stderr" : "stdout", text });
  liveOutput.append(span);
  liveOutput.scrollTop = liveOutput.scrollHeight;
}

function follow() {
  live.hidden = false;
  stream = new EventSource(`/api/v2/tasks/${ref}/events`);
  stream.addEventListener("output", (event) => appendLive(JSON.parse(event.data)));
  stream.addEventListener("status", () => refresh());
  stream.addEventListener("task", (event) => showFinal(JSON.parse(event.data)));
}

async function refresh() {
  const answer = await v2(`/api/v2/tasks/${ref}`);
  if (answer.status !== 200) return null;
  const task = answer.body.data;
  if (task.done) await showFinal(task);
  else if (!finalShown) renderHead(task);
  return task;
}

function pollLater() {
  pollTimer = setTimeout(async () => {
    try {
      const task = await refresh();
      if (task && !task.done) pollLater();
    } catch (error) {
      pollLater();
    }
  }, 3000);
}

cancelButton.addEventListener("click", async () => {
  cancelButton.disabled = true;
  const answer = await v2(`/api/v2/tasks/${ref}/cancel`, { method: "POST" });
  say(message, answer.status === 200 ? `Task ${ref} cancelled.` : `Not cancelled: ${v2Error(answer)}`,
    answer.status === 200 ? "success" : "error");
  cancelButton.disabled = false;
  await refresh();
});

async function start() {
  if (!isRef(ref)) {
    say(message, "Not a valid task id: ids are 1 to 64 of A-Z a-z 0-9 . _ -", "error");
    markLoaded();
    return;
  }
  const answer = await v2(`/api/v2/tasks/${ref}`);
  if (answer.status !== 200) {
    say(message, answer.status === 404 ? `No task ${ref}.` : v2Error(answer), "error");
    markLoaded();
    return;
  }
  const task = answer.body.data;
  taskBox.hidden = false;
  renderHead(task);
  renderDetails(task);
  if (task.done) {
    await showFinal(task);
    return;
  }
  // EventSource sends no Authorization header: with a key the page polls instead
  if (!apiKey()) follow();
  pollLater();
  markLoaded();
}

start().catch((error) => {
  say(message, `The task could not be shown: ${error.message}`, "error");
  markLoaded("error");
});
