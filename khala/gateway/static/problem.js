// One problem's page (/problems/<id>): its versions (limits, per-language time factors, groups
// with points, policy and dependencies, case counts, checker and interactor), a new version
// from a package, deleting a version, and rejudges: started here (API v2's filters) and watched
// live (polled while one is at work: queued, running, done, and the verdicts that moved).

import {
  el, fmtBytes, markLoaded, poll, say, timeEl, v2, v2Error, VERDICTS,
} from "./common.js";
import {
  fmtFactors, fmtLimitSeconds, isProblemId, refusal, uploadPackage,
} from "./problemlib.js";

const message = document.getElementById("message");
const versionMessage = document.getElementById("version-message");
const rawId = decodeURIComponent(location.pathname.split("/")[2] || "");
const id = isProblemId(rawId) ? rawId : null;
const base = `/api/v2/problems/${id}`;
let versionsShown = "";

function fact(list, name, value) {
  list.append(el("dt", { text: name }), el("dd", {}, value));
}

function groupsTable(groups) {
  if (!groups.length) return el("p", { class: "hint", text: "No groups: every case counts alone." });
  const rows = groups.map((g) => el("tr", { "data-group": g.name },
    el("td", { "data-label": "Group", class: "mono", text: g.name }),
    el("td", { "data-label": "Points", text: String(g.points) }),
    el("td", { "data-label": "Policy", text: g.policy === "min" ? "all or nothing (min)" : "sum of its cases" }),
    el("td", { "data-label": "Depends on", text: g.deps.length ? g.deps.join(", ") : "—" }),
    el("td", { "data-label": "Cases", text: String(g.cases) })));
  return el("div", { class: "table-wrap" }, el("table", { class: "cards groups" },
    el("caption", { class: "visually-hidden", text: "Groups" }),
    el("thead", {}, el("tr", {}, ...["Group", "Points", "Policy", "Depends on", "Cases"].map(
      (name) => el("th", { scope: "col", text: name })))),
    el("tbody", {}, ...rows)));
}

// The version's cases, read when the disclosure is opened (GET …/versions/N).
function caseList(version) {
  const details = el("details", { class: "case-list" },
    el("summary", { text: `Show the ${version.cases} case${version.cases === 1 ? "" : "s"}` }));
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    loaded = true;
    const answer = await v2(`${base}/versions/${version.version}`);
    if (answer.status !== 200) {
      details.append(el("p", { class: "message", "data-kind": "error", text: v2Error(answer) }));
      return;
    }
    details.append(el("ol", { class: "mono" }, ...answer.body.data.case_list.map((c) => el("li", {
      text: `${c.name}${c.group ? ` (group ${c.group})` : ""}: input ${fmtBytes(c.input)}, answer ${fmtBytes(c.answer)}${c.weight === 1 ? "" : `, weight ${c.weight}`}`,
    }))));
  });
  return details;
}

function deleteButton(version) {
  const button = el("button", { type: "button", class: "danger small", text: `Delete version ${version.version}` });
  button.addEventListener("click", async () => {
    if (button.dataset.armed !== "true") { // a second click confirms (no dialog box)
      button.dataset.armed = "true";
      button.textContent = `Really delete version ${version.version}? Click again`;
      return;
    }
    button.disabled = true;
    say(versionMessage, `Deleting version ${version.version}…`);
    try {
      const answer = await v2(`${base}/versions/${version.version}`, { method: "DELETE" });
      if (answer.status === 204) say(versionMessage, `Version ${version.version} deleted.`, "success");
      else say(versionMessage, refusal(answer, `Version ${version.version} is kept.`), "error");
    } catch (error) {
      say(versionMessage, `The gateway could not be reached: ${error.message}`, "error");
    }
    versionsShown = "";
    await loadProblem().catch(() => {});
  });
  return button;
}

function versionSection(version, latest) {
  const l = version.limits || {};
  const facts = el("dl", { class: "facts" });
  fact(facts, "Created", timeEl(version.created));
  fact(facts, "Package", version.origin === "polygon" ? "Polygon" : "Khala");
  fact(facts, "Cases", el("span", { class: "cases", text: String(version.cases) }));
  fact(facts, "Size", fmtBytes(version.bytes));
  fact(facts, "Time limit", `${fmtLimitSeconds(l.time)} CPU per case (wall ${fmtLimitSeconds(l.wall)})`);
  fact(facts, "Time factors", el("span", { class: "factors", text: fmtFactors(l.time_factors) }));
  fact(facts, "Memory", fmtBytes(l.memory));
  fact(facts, "Output", fmtBytes(l.output));
  fact(facts, "Checker", el("span", { class: "checker",
    text: version.checker ? `yes (${version.checker})` : "none: the outputs are compared" }));
  fact(facts, "Interactor", el("span", { class: "interactor",
    text: version.interactor ? `yes (${version.interactor})` : "none" }));
  if (version.files.length) fact(facts, "Extra files", version.files.join(", "));
  if (version.notes.length) fact(facts, "Import notes", version.notes.join(" "));
  const head = el("h3", {}, `Version ${version.version}`,
    version.version === latest ? el("span", { class: "tag", text: "latest" }) : null,
    version.deleting ? el("span", { class: "tag", text: "being deleted" }) : null);
  return el("section", { class: "version", "data-version": version.version,
    "aria-label": `Version ${version.version}` },
  head, facts, el("h4", { text: "Groups" }), groupsTable(version.groups), caseList(version),
  version.deleting ? null : el("p", {}, deleteButton(version)));
}

function fillVersionChoices(versions) {
  for (const [selectId, first] of [["rj-version", "the latest version"], ["rj-from", "any version"]]) {
    const select = document.getElementById(selectId);
    const value = select.value;
    select.replaceChildren(el("option", { value: selectId === "rj-version" ? "0" : "", text: first }),
      ...versions.map((v) => el("option", { value: String(v.version), text: `version ${v.version}` })));
    select.value = [...select.options].some((o) => o.value === value) ? value : select.options[0].value;
  }
}

async function loadProblem() {
  const answer = await v2(base);
  if (answer.status !== 200) {
    say(message, answer.status === 404 ? `No problem ${id}.` : v2Error(answer), "error");
    document.getElementById("problem").hidden = true;
    return false;
  }
  const problem = answer.body.data;
  document.title = `${problem.title || problem.id} · Khala`;
  document.getElementById("title").textContent = problem.title || problem.id;
  document.getElementById("problem-id").textContent = problem.id;
  const facts = document.getElementById("facts");
  facts.replaceChildren();
  fact(facts, "Id", el("span", { class: "mono", text: problem.id }));
  fact(facts, "Created", timeEl(problem.created));
  fact(facts, "Latest version", problem.latest === null ? "none yet" : String(problem.latest));
  const text = JSON.stringify(problem.versions);
  if (text !== versionsShown) {
    versionsShown = text;
    const newest = [...problem.versions].reverse();
    document.getElementById("versions").replaceChildren(...newest.map(
      (v) => versionSection(v, problem.latest)));
    if (!newest.length) {
      document.getElementById("versions").append(el("p", { class: "hint", text: "No version yet: upload a package." }));
    }
    fillVersionChoices(problem.versions.filter((v) => !v.deleting));
  }
  document.getElementById("problem").hidden = false;
  return true;
}

// ----------------------------------------------------------------------------- rejudges

const STATES = {
  applying: { text: "Queueing tasks", cls: "active", mark: "⟳" },
  running: { text: "Running", cls: "active", mark: "⟳" },
  done: { text: "Done", cls: "success", mark: "✓" },
  failed: { text: "Failed", cls: "error", mark: "!" },
};

function verdictText(verdict) {
  if (!verdict) return "no verdict";
  return (VERDICTS[verdict] || { text: verdict }).text;
}

function filtersText(r) {
  const parts = [];
  if (r.from_version !== null) parts.push(`judged against version ${r.from_version}`);
  if (r.user !== null) parts.push(`user ${r.user}`);
  if (r.verdict !== null) parts.push(verdictText(r.verdict));
  return parts.length ? parts.join(", ") : "every task";
}

function progressCell(r) {
  const queued = r.pending - r.running;
  const cell = el("td", { "data-label": "Progress", class: "progress", "data-done": r.done,
    "data-total": r.total, "data-queued": queued, "data-running": r.running });
  if (r.total > 0) {
    cell.append(el("progress", { max: r.total, value: r.done,
      "aria-label": `${r.done} of ${r.total} tasks judged again` }), " ");
  }
  cell.append(el("span", { text: r.total === 0 && r.state !== "applying"
    ? "no task to judge again"
    : `${r.done} of ${r.total} done · ${r.running} running · ${queued} queued` }));
  return cell;
}

function changesCell(r) {
  const cell = el("td", { "data-label": "Verdict changes", class: "changes" });
  if (!r.changes.length) {
    cell.append(el("span", { class: "none", text: r.done ? "none" : "—" }));
    return cell;
  }
  cell.append(el("ul", { class: "plain" }, ...r.changes.map((c) => el("li", {
    "data-before": c.before, "data-after": c.after, "data-tasks": c.tasks,
    text: `${verdictText(c.before)} → ${verdictText(c.after)}: ${c.tasks} task${c.tasks === 1 ? "" : "s"}`,
  }))));
  return cell;
}

function rejudgeRow(r) {
  const s = STATES[r.state] || STATES.failed;
  return el("tr", { "data-id": r.id, "data-state": r.state },
    el("td", { "data-label": "Rejudge", class: "mono", text: r.id }),
    el("td", { "data-label": "State" }, el("span", { class: `status status-${s.cls}` },
      el("span", { class: "mark", "aria-hidden": "true", text: s.mark }), ` ${s.text}`),
    r.detail ? el("span", { text: ` ${r.detail}` }) : null),
    el("td", { "data-label": "Against", text: `version ${r.version}` }),
    el("td", { "data-label": "Filters", text: filtersText(r) }),
    progressCell(r), changesCell(r),
    el("td", { "data-label": "Started (UTC)" }, timeEl(r.created)));
}

let rejudgesShown = "";

// Polled: again while a rejudge is at work, then stopped until one is started.
async function loadRejudges() {
  const answer = await v2(`${base}/rejudges`);
  if (answer.status !== 200) throw new Error(v2Error(answer));
  const rejudges = [...answer.body.data].reverse(); // newest first
  const text = JSON.stringify(rejudges);
  if (text !== rejudgesShown) {
    rejudgesShown = text;
    const body = document.querySelector("#rejudges tbody");
    body.replaceChildren(...rejudges.map(rejudgeRow));
    if (!rejudges.length) {
      body.append(el("tr", {}, el("td", { colspan: 7, class: "empty", text: "No rejudge yet." })));
    }
  }
  return rejudges.some((r) => r.state === "applying" || r.state === "running");
}

// ----------------------------------------------------------------------------- forms

function numberOrNull(text) {
  return text === "" ? null : Number(text);
}

function rejudgeBody() {
  const body = { version: Number(document.getElementById("rj-version").value) };
  const from = numberOrNull(document.getElementById("rj-from").value);
  if (from !== null) body.from_version = from;
  const userField = document.getElementById("rj-user");
  const user = userField.value.trim();
  if (user !== "") {
    if (!/^\d{1,10}$/.test(user)) {
      userField.setAttribute("aria-invalid", "true");
      throw new Error("The user is a number.");
    }
    body.user = Number(user);
  }
  userField.removeAttribute("aria-invalid");
  const verdict = document.getElementById("rj-verdict").value;
  if (verdict) body.verdict = verdict;
  return body;
}

function setUp(rejudges) {
  const upload = document.getElementById("upload");
  const upMessage = document.getElementById("up-message");
  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("up-package").files[0];
    if (!file) {
      say(upMessage, "Choose a package (a zip). Nothing was uploaded.", "error");
      return;
    }
    const button = document.getElementById("up-submit");
    button.disabled = true;
    say(upMessage, `Uploading ${file.name}…`);
    try {
      const answer = await uploadPackage(id, file, document.getElementById("up-format").value);
      if (answer.status === 201) {
        const notes = answer.body.notes.length ? ` Notes: ${answer.body.notes.join(" ")}` : "";
        say(upMessage, `Version ${answer.body.version} stored.${notes}`, "success");
        upload.reset();
        await loadProblem();
      } else {
        say(upMessage, refusal(answer, "No version was added."), "error");
      }
    } catch (error) {
      say(upMessage, `The gateway could not be reached: ${error.message}`, "error");
    }
    button.disabled = false;
  });

  const rejudge = document.getElementById("rejudge");
  const rjMessage = document.getElementById("rj-message");
  rejudge.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = rejudgeBody();
    } catch (error) {
      say(rjMessage, `${error.message} No rejudge was started.`, "error");
      return;
    }
    const button = document.getElementById("rj-submit");
    button.disabled = true;
    try {
      const answer = await v2(`${base}/rejudges`, { json: body });
      if (answer.status === 202) {
        say(rjMessage, `Rejudge ${answer.body.data.id} started against version ${answer.body.data.version}.`, "success");
        rejudges.now();
      } else {
        say(rjMessage, refusal(answer, "No rejudge was started."), "error");
      }
    } catch (error) {
      say(rjMessage, `The gateway could not be reached: ${error.message}`, "error");
    }
    button.disabled = false;
  });
}

async function start() {
  if (id === null) {
    say(message, "Not a valid problem id: ids are 1 to 64 of A-Z a-z 0-9 . _ - (a letter or digit first).", "error");
    markLoaded();
    return;
  }
  let found = false;
  try {
    found = await loadProblem();
  } catch (error) {
    say(message, `The problem could not be loaded: ${error.message}`, "error");
    markLoaded("error");
    return;
  }
  if (!found) {
    markLoaded();
    return;
  }
  let first = true;
  const rejudges = poll(async () => {
    try {
      return await loadRejudges();
    } finally {
      if (first) {
        first = false;
        markLoaded();
      }
    }
  }, 1000);
  setUp(rejudges);
}

start();
