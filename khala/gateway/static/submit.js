// The submit page: judge a program (a language from GET /api/v2/languages, the source, test
// cases typed or from a zip, limits in seconds and MiB), or run raw commands (advanced). Sends
// one API v2 task and opens its page; a refusal is shown with the API's reason.

import { el, isRef, markLoaded, say, v2, v2Error } from "./common.js";
import { casesFromFiles, readZip } from "./zip.js";

const form = document.getElementById("submit-form");
const message = document.getElementById("message");
const language = document.getElementById("language");
const fileName = document.getElementById("file-name");
const source = document.getElementById("source");
const rows = document.getElementById("case-rows");
const button = document.getElementById("submit-button");
let zipCases = null;
let fileNameTouched = false;
const sourceFiles = {};

function mode() {
  return form.elements.mode.value;
}

function casesMode() {
  return form.elements.cases_mode.value;
}

function showMode() {
  const judge = mode() === "judge";
  for (const node of document.querySelectorAll(".judge-only")) node.hidden = !judge;
  for (const node of document.querySelectorAll(".advanced-only")) node.hidden = judge;
  const zip = casesMode() === "zip";
  rows.hidden = zip;
  document.getElementById("case-row-actions").hidden = zip;
  document.getElementById("cases-zip-box").hidden = !zip;
}

function renumber() {
  [...rows.children].forEach((row, index) => {
    const n = index + 1;
    row.querySelector("legend").textContent = `Case ${n}`;
    const [input, standard] = row.querySelectorAll("textarea");
    input.id = `case-${n}-input`;
    standard.id = `case-${n}-output`;
    const [inputLabel, standardLabel] = row.querySelectorAll("label");
    inputLabel.htmlFor = input.id;
    standardLabel.htmlFor = standard.id;
    inputLabel.textContent = `Case ${n} input`;
    standardLabel.textContent = `Case ${n} expected output`;
    row.querySelector("button").setAttribute("aria-label", `Remove case ${n}`);
    row.querySelector("button").disabled = rows.children.length === 1;
  });
}

function addCase() {
  const remove = el("button", { type: "button", class: "secondary-button small", text: "Remove" });
  const row = el("fieldset", { class: "case-row" }, el("legend"),
    el("div", { class: "field" }, el("label"), el("textarea", { rows: "3", spellcheck: "false", "data-part": "input" })),
    el("div", { class: "field" }, el("label"), el("textarea", { rows: "3", spellcheck: "false", "data-part": "standard" })),
    remove);
  remove.addEventListener("click", () => {
    row.remove();
    renumber();
  });
  rows.append(row);
  renumber();
  return row;
}

// The languages offered now; while none is, asked again every 2 s (an executor may be
// starting), at most LANGUAGE_TRIES times.
const LANGUAGE_TRIES = 30;

async function loadLanguages(tries = 1) {
  const answer = await v2("/api/v2/languages");
  const note = document.getElementById("language-note");
  const offered = answer.status === 200 ? answer.body.data.filter((x) => x.executors > 0) : [];
  language.replaceChildren(...offered.map((x) => el("option", { value: x.name,
    text: `${x.name} · ${x.version.length > 48 ? `${x.version.slice(0, 47)}…` : x.version}`, title: x.version })));
  for (const x of offered) sourceFiles[x.name] = x.source_file;
  if (!offered.length) {
    note.textContent = answer.status === 200 ? "No executor offers a language now: run commands instead."
      : `Languages could not be read: ${v2Error(answer)}`;
    if (tries < LANGUAGE_TRIES) setTimeout(() => loadLanguages(tries + 1), 2000);
  } else {
    if (sourceFiles.c) language.value = "c";
    note.textContent = "Offered by the executors at work now.";
  }
  fillFileName();
}

function fillFileName() {
  if (mode() === "judge" && !fileNameTouched) fileName.value = sourceFiles[language.value] || "";
}

function mark(node, bad) {
  if (bad) node.setAttribute("aria-invalid", "true");
  else node.removeAttribute("aria-invalid");
  return bad;
}

function numberOf(node, what, low) {
  const value = Number(node.value);
  if (node.value.trim() === "" || !Number.isFinite(value) || value < low) {
    mark(node, true);
    throw new Error(`${what} must be a number of at least ${low}`);
  }
  mark(node, false);
  return value;
}

function typedCases() {
  return [...rows.children].map((row) => ({
    input: row.querySelector("[data-part=input]").value,
    standard: row.querySelector("[data-part=standard]").value,
  }));
}

function taskBody() {
  for (const node of form.querySelectorAll("[aria-invalid]")) mark(node, false);
  if (mark(source, !source.value.trim())) throw new Error("Write the source code, or load a file.");
  if (mark(fileName, !/^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/.test(fileName.value))) {
    throw new Error("The file name is empty or has characters other than A-Z a-z 0-9 . _ - /");
  }
  const user = document.getElementById("user");
  if (mark(user, !/^\d{1,10}$/.test(user.value.trim()))) throw new Error("The user id must be a whole number.");
  const seconds = numberOf(document.getElementById("time-limit"), "The time limit", 0.001);
  const mib = numberOf(document.getElementById("memory-limit"), "The memory limit", 1);
  const files = [{ path: fileName.value, content: source.value }];
  const task = { user: Number(user.value), compile: { files }, execute: { memory_limit: Math.round(mib * 1048576) } };
  if (mode() === "advanced") {
    const command = document.getElementById("execute-command");
    if (mark(command, !command.value.trim())) throw new Error("The execute command is required.");
    task.compile.command = document.getElementById("compile-command").value;
    task.execute.command = command.value;
    task.execute.input = document.getElementById("stdin").value;
    task.execute.timeout = seconds;
    return task;
  }
  if (mark(language, !language.value)) throw new Error("Choose a language (none is offered now).");
  const cases = casesMode() === "zip" ? zipCases : typedCases();
  if (!cases || !cases.length) {
    mark(document.getElementById("cases-zip"), casesMode() === "zip");
    throw new Error(casesMode() === "zip" ? "Choose a zip of test cases." : "Add at least one test case.");
  }
  task.compile.language = language.value;
  task.execute.cases = cases;
  task.execute.cpu_limit = seconds;
  task.execute.timeout = Math.round((seconds * 2 + 1) * 1000) / 1000;
  task.execute.compare = { mode: document.getElementById("compare").value };
  return task;
}

form.addEventListener("change", (event) => {
  if (event.target.name === "mode" || event.target.name === "cases_mode") showMode();
  if (event.target === language) fillFileName();
});
fileName.addEventListener("input", () => { fileNameTouched = true; });
document.getElementById("add-case").addEventListener("click", () => addCase().querySelector("textarea").focus());

document.getElementById("source-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  source.value = await file.text();
  // A judged program keeps its language's file name; a command task takes the file's own.
  if (mode() === "advanced" && !fileNameTouched) fileName.value = file.name;
});

document.getElementById("cases-zip").addEventListener("change", async (event) => {
  const note = document.getElementById("cases-zip-note");
  zipCases = null;
  const file = event.target.files[0];
  if (!file) return;
  try {
    zipCases = casesFromFiles(await readZip(await file.arrayBuffer()));
    note.textContent = `${zipCases.length} case${zipCases.length === 1 ? "" : "s"} read.`;
    mark(event.target, false);
  } catch (error) {
    note.textContent = `Not usable: ${error.message}`;
    mark(event.target, true);
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  let task;
  try {
    task = taskBody();
  } catch (error) {
    say(message, `${error.message} Nothing was submitted.`, "error");
    message.focus();
    return;
  }
  const ref = document.getElementById("task-ref");
  if (mark(ref, ref.value && !isRef(ref.value))) {
    say(message, "A task id is 1 to 64 of A-Z a-z 0-9 . _ - Nothing was submitted.", "error");
    return;
  }
  button.disabled = true;
  say(message, "Submitting…");
  try {
    const path = ref.value ? `/api/v2/tasks/${ref.value}` : "/api/v2/tasks";
    const answer = await v2(path, { json: task });
    if (answer.status === 200 || answer.status === 201) {
      const id = answer.body.data.id;
      say(message, `Task ${id} submitted. Opening its page…`, "success");
      location.assign(`/tasks/${id}`);
      return;
    }
    say(message, `Refused (HTTP ${answer.status}): ${v2Error(answer)} No task was created.`, "error");
  } catch (error) {
    say(message, `The gateway could not be reached: ${error.message}`, "error");
  }
  button.disabled = false;
  message.focus();
});

addCase();
showMode();
loadLanguages().catch((error) => say(message, `Languages could not be read: ${error.message}`, "error"))
  .finally(() => markLoaded());
