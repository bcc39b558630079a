// The tasks page: API v2's list (status, user, order, cursor paging) with each task's verdict,
// language, score, time and memory; a verdict filter over the tasks scanned; auto-refresh while
// a shown task is not done; Cancel for undone ones. The whole view is in the URL.

import {
  el, fmtBytes, fmtSeconds, isRef, markLoaded, outcomeBadge, poll, refLink, say, timeEl, usage,
  v2, v2Error,
} from "./common.js";

const params = new URLSearchParams(location.search);
const message = document.getElementById("message");
const body = document.querySelector("#tasks tbody");
const perPage = [10, 20, 50, 100].includes(Number(params.get("per_page"))) ? Number(params.get("per_page")) : 20;
const verdict = params.get("verdict") || "";
const MAX_SCANNED = 500; // tasks a verdict filter looks through for one page

for (const [name, id] of [["status", "q-status"], ["verdict", "q-verdict"], ["user", "q-user"],
  ["order", "q-order"], ["per_page", "q-per-page"]]) {
  if (params.get(name)) document.getElementById(id).value = params.get(name);
}

const openId = params.get("open");
if (openId !== null) {
  const wanted = openId.trim();
  if (isRef(wanted)) location.replace(`/tasks/${wanted}`);
  else say(message, "Not a task id: ids are 1 to 64 of A-Z a-z 0-9 . _ -", "error");
}

function listQuery(cursor) {
  const query = new URLSearchParams({ limit: String(verdict ? 100 : perPage),
    order: params.get("order") === "oldest" ? "oldest" : "newest" });
  if (params.get("status")) query.set("status", params.get("status"));
  if (params.get("user")) query.set("user", params.get("user"));
  if (cursor) query.set("cursor", cursor);
  return `/api/v2/tasks?${query}`;
}

// A done task never changes (but for a cancelled one's output, not shown here): fetched once.
const doneTasks = new Map();

async function details(summary) {
  if (summary.done && doneTasks.has(summary.id)) return doneTasks.get(summary.id);
  const answer = await v2(`/api/v2/tasks/${summary.id}`);
  if (answer.status !== 200) return summary;
  if (answer.body.data.done) doneTasks.set(summary.id, answer.body.data);
  return answer.body.data;
}

// One page: the tasks of the list (with a verdict filter, of as many list pages as it takes).
async function load() {
  let cursor = params.get("cursor") || "";
  const shown = [];
  let scanned = 0;
  let next = null;
  for (;;) {
    const answer = await v2(listQuery(cursor));
    if (answer.status !== 200) throw new Error(v2Error(answer));
    const tasks = await Promise.all(answer.body.data.map(details));
    scanned += tasks.length;
    for (const task of tasks) {
      const got = task.result && task.result.judgement ? task.result.judgement.verdict : "";
      if (!verdict || got === verdict) shown.push(task);
    }
    next = answer.body.links.next;
    if (!verdict || !next || shown.length >= perPage || scanned >= MAX_SCANNED) break;
    cursor = new URLSearchParams(next.split("?")[1]).get("cursor");
  }
  return { shown: shown.slice(0, perPage), next, scanned };
}

function row(task) {
  const judgement = task.result && task.result.judgement;
  const used = task.done ? usage(task) : { time: null, memory: null };
  const actions = el("td", { "data-label": "" });
  if (!task.done && task.status) {
    const button = el("button", { type: "button", class: "danger small", text: "Cancel" });
    button.setAttribute("aria-label", `Cancel task ${task.id}`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      const answer = await v2(`/api/v2/tasks/${task.id}/cancel`, { method: "POST" });
      say(message, answer.status === 200 ? `Task ${task.id} cancelled.` : `Task ${task.id} not cancelled: ${v2Error(answer)}`,
        answer.status === 200 ? "success" : "error");
      refresher.now();
    });
    actions.append(button);
  }
  return el("tr", { "data-id": task.id, "data-status": task.status },
    el("td", { "data-label": "Task" }, refLink(task.id)),
    el("td", { "data-label": "Result" }, outcomeBadge(task)),
    el("td", { "data-label": "Language", text: task.compile ? task.compile.language || "command" : "" }),
    el("td", { "data-label": "Score", text: judgement ? `${judgement.score} / ${judgement.max_score}` : "—" }),
    el("td", { "data-label": "Time", text: fmtSeconds(used.time) }),
    el("td", { "data-label": "Memory", text: fmtBytes(used.memory) }),
    el("td", { "data-label": "User", text: String(task.user) }),
    el("td", { "data-label": "Added" }, timeEl(task.add_time)),
    actions);
}

function pager(next, scanned) {
  const nextLink = document.getElementById("next");
  if (next) {
    const query = new URLSearchParams(params);
    query.set("cursor", new URLSearchParams(next.split("?")[1]).get("cursor"));
    nextLink.href = `/?${query}`;
  }
  nextLink.hidden = !next;
  const first = new URLSearchParams(params);
  first.delete("cursor");
  document.getElementById("first").href = `/?${first}`;
  document.getElementById("page-note").textContent = verdict ? `${scanned} tasks scanned for the verdict` : "";
}

const refresher = poll(async () => {
  const { shown, next, scanned } = await load();
  body.replaceChildren(...shown.map(row));
  if (!shown.length) {
    body.append(el("tr", {}, el("td", { class: "empty", colspan: "9", text: "No tasks match." })));
  }
  pager(next, scanned);
  markLoaded();
  return shown.some((t) => !t.done);
}, 2000);
