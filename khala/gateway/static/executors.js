// The executors page (/executors): GET /api/executors, refreshed every few seconds.
import { el, getJSON, markLoaded, poll, RESULTS, say, timeEl } from "./common.js";

const REFRESH_MS = 3000;
const body = document.querySelector("#executors tbody");
const message = document.getElementById("message");
let shown = "";

async function load() {
  let answer;
  try {
    answer = await getJSON("/api/executors");
  } catch (error) {
    say(message, `The executors could not be loaded: ${error.message}.`, "error");
    markLoaded("error");
    throw error;
  }
  if (answer.result !== 0) {
    say(message, RESULTS[answer.result] || `Result ${answer.result}.`, "error");
    markLoaded("error");
    return true;
  }
  const count = answer.executors.length;
  say(message, `${count} executor${count === 1 ? "" : "s"} at work.`);
  const text = JSON.stringify(answer.executors);
  if (text !== shown) {
    shown = text;
    body.replaceChildren(...answer.executors.map((e) => el("tr", {},
      el("td", { "data-label": "Hostname", text: e.hostname }),
      el("td", { "data-label": "Id", class: "mono", text: e.id }),
      el("td", { "data-label": "Last report" }, timeEl(e.report_time)))));
    if (count === 0) body.append(el("tr", {}, el("td", { colspan: 3, class: "empty", text: "No executor at work." })));
  }
  markLoaded();
  return true;
}

poll(load, REFRESH_MS);
