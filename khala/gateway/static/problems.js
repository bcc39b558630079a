// The problems page (/problems): every problem with its latest version's case count, groups and
// limits (GET /api/v2/problems), and a package upload that creates a problem or adds a version.

import { el, fmtBytes, markLoaded, poll, say, v2, v2Error } from "./common.js";
import {
  fmtLimitSeconds, isProblemId, limitsLine, refusal, uploadPackage,
} from "./problemlib.js";

const message = document.getElementById("message");
const body = document.querySelector("#problems tbody");
let shown = "";
let known = new Set(); // the ids listed

function row(problem) {
  const latest = problem.versions.find((v) => v.version === problem.latest) || null;
  const link = isProblemId(problem.id)
    ? el("a", { class: "mono", href: `/problems/${problem.id}`, text: problem.id })
    : el("span", { class: "mono", text: problem.id });
  const versions = problem.versions.filter((v) => !v.deleting).length;
  return el("tr", { "data-id": problem.id },
    el("td", { "data-label": "Problem" }, link),
    el("td", { "data-label": "Title", text: problem.title || "—" }),
    el("td", { "data-label": "Latest version", text: latest ? String(latest.version) : "none yet" }),
    el("td", { "data-label": "Cases", text: latest ? String(latest.cases) : "—" }),
    el("td", { "data-label": "Groups", text: latest ? String(latest.groups.length) : "—" }),
    el("td", { "data-label": "Time", text: latest ? fmtLimitSeconds(latest.limits.time) : "—",
      title: latest ? limitsLine(latest.limits) : null }),
    el("td", { "data-label": "Memory", text: latest ? fmtBytes(latest.limits.memory) : "—" }),
    el("td", { "data-label": "Versions", text: String(versions) }));
}

async function load() {
  const answer = await v2("/api/v2/problems");
  if (answer.status !== 200) {
    say(message, `The problems could not be loaded: ${v2Error(answer)}`, "error");
    markLoaded("error");
    return answer.status >= 500;
  }
  const problems = answer.body.data;
  known = new Set(problems.map((p) => p.id));
  const text = JSON.stringify(problems);
  if (text !== shown) {
    shown = text;
    body.replaceChildren(...problems.map(row));
    if (!problems.length) {
      body.append(el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No problem yet." })));
    }
  }
  if (message.dataset.kind !== "error") {
    say(message, `${problems.length} problem${problems.length === 1 ? "" : "s"}.`);
  }
  markLoaded();
  return true;
}

const poller = poll(load, 5000);

const form = document.getElementById("upload");
const upMessage = document.getElementById("up-message");
const button = document.getElementById("up-submit");

// The problem, created first when the list does not have it (409: made meanwhile, fine); an
// answer that is no success, or null.
async function ensureProblem(id, title) {
  if (known.has(id)) return null;
  const made = await v2("/api/v2/problems", { json: { id, title } });
  return made.status === 201 || made.status === 409 ? null : made;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const idField = document.getElementById("up-id");
  const id = idField.value.trim();
  const file = document.getElementById("up-package").files[0];
  if (!isProblemId(id)) {
    idField.setAttribute("aria-invalid", "true");
    say(upMessage, "A problem id is 1 to 64 of A-Z a-z 0-9 . _ - (a letter or digit first). Nothing was uploaded.", "error");
    return;
  }
  idField.removeAttribute("aria-invalid");
  if (!file) {
    say(upMessage, "Choose a package (a zip). Nothing was uploaded.", "error");
    return;
  }
  button.disabled = true;
  say(upMessage, `Uploading ${file.name}…`);
  try {
    const refused = await ensureProblem(id, document.getElementById("up-title").value.trim());
    if (refused) {
      say(upMessage, refusal(refused, "Nothing was uploaded."), "error");
    } else {
      const answer = await uploadPackage(id, file, document.getElementById("up-format").value);
      if (answer.status === 201) {
        say(upMessage, `Version ${answer.body.version} of ${id} stored. Opening it…`, "success");
        location.assign(`/problems/${id}`);
        return;
      }
      say(upMessage, refusal(answer, "No version was added."), "error");
      poller.now();
    }
  } catch (error) {
    say(upMessage, `The gateway could not be reached: ${error.message}`, "error");
  }
  button.disabled = false;
});
