// The submit page (/submit): posts the form to POST /api/task as multipart, shows the answer's
// result code as a message next to the button, and opens the new task's page on success.
import { isId, markLoaded, RESULTS, say } from "./common.js";

const form = document.getElementById("task-form");
const message = document.getElementById("message");
const button = document.getElementById("submit");
const ARCHIVES = ["compile_source", "execute_data"];
const REQUIRED_INTS = ["user", "compile_timeout", "execute_timeout"];
const LIMITS = [
  "compile_memory_limit", "execute_memory_limit", "execute_cpu_limit", "execute_pids_limit",
  "execute_output_limit", "execute_disk_limit",
];
const INT_MAX = 2147483647;

function mode(archive) {
  return form.elements.namedItem(`${archive}_mode`).value;
}

function showModes() {
  for (const part of form.querySelectorAll(".mode")) {
    part.hidden = mode(part.dataset.for) !== part.dataset.mode;
  }
}

// The form as the API wants it: only the chosen way of giving each archive.
function formData() {
  const data = new FormData(form);
  for (const archive of ARCHIVES) {
    const chosen = mode(archive);
    data.delete(`${archive}_mode`);
    if (chosen === "zip") {
      data.set(`${archive}_name`, "");
      data.set(`${archive}_str`, "");
    } else {
      data.delete(archive);
    }
  }
  return data;
}

// After result 4: which fields look wrong, judged the way the API judges them (a hint only;
// the API's answer is what counts).
function suspects(data) {
  const bad = [];
  const digits = (text) => /^[0-9]{1,20}$/.test(text.trim());
  for (const name of REQUIRED_INTS) {
    const text = String(data.get(name) || "");
    if (!digits(text) || Number(text) > INT_MAX) bad.push(name);
  }
  for (const name of LIMITS) {
    const text = String(data.get(name) || "");
    if (text.trim() && (!digits(text) || Number(text) < 1)) bad.push(name);
  }
  for (const archive of ARCHIVES) {
    if (mode(archive) !== "text") continue;
    const name = String(data.get(`${archive}_name`) || "");
    if (!name && data.get(`${archive}_str`)) bad.push(`${archive}_name`);
    if (name.startsWith("/") || name.split("/").includes("..")) bad.push(`${archive}_name`);
  }
  return bad;
}

function labelOf(name) {
  const input = form.elements.namedItem(name);
  const label = input && input.labels && input.labels[0];
  return label ? label.textContent.trim() : name;
}

function markInvalid(names) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const name of names) {
    const input = form.elements.namedItem(name);
    if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
  }
}

function failureText(code, data) {
  if (code !== 4) return RESULTS[code] || `The gateway answered result ${code}.`;
  const bad = suspects(data);
  markInvalid(bad);
  const where = bad.length
    ? ` Check: ${bad.map(labelOf).join(", ")}.`
    : " A field is missing or out of range, or a zip archive is not acceptable.";
  return `${RESULTS[4]}${where} No task was created.`;
}

async function submit(event) {
  event.preventDefault();
  const data = formData();
  button.disabled = true;
  say(message, "Submitting…", "info");
  try {
    const response = await fetch("/api/task", { method: "POST", body: data });
    if (!response.ok) throw new Error(`the gateway answered HTTP ${response.status}`);
    const answer = await response.json();
    if (answer.result === 0 && isId(answer.id)) {
      markInvalid([]);
      say(message, `Task ${answer.id} added. Opening its page…`, "success");
      location.assign(`/tasks/${answer.id}`);
      return;
    }
    say(message, failureText(answer.result, data), "error");
  } catch (error) {
    say(message, `The task was not submitted: ${error.message}.`, "error");
  }
  button.disabled = false;
  message.focus();
}

for (const radio of form.querySelectorAll("input[type=radio]")) {
  radio.addEventListener("change", showModes);
}
form.addEventListener("submit", submit);
showModes();
markLoaded();
