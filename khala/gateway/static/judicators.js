// The judicators page (/judicators): GET /api/judicators, refreshed every few seconds.
import { el, getJSON, markLoaded, poll, RESULTS, say } from "./common.js";

const REFRESH_MS = 5000;
const body = document.querySelector("#judicators tbody");
const message = document.getElementById("message");
let shown = "";

async function load() {
  let answer;
  try {
    answer = await getJSON("/api/judicators");
  } catch (error) {
    say(message, `The judicators could not be loaded: ${error.message}.`, "error");
    markLoaded("error");
    throw error;
  }
  if (answer.result !== 0) {
    say(message, RESULTS[answer.result] || `Result ${answer.result}.`, "error");
    markLoaded("error");
    return true;
  }
  const count = answer.judicators.length;
  say(message, `${count} judicator${count === 1 ? "" : "s"} known.`);
  const text = JSON.stringify(answer.judicators);
  if (text !== shown) {
    shown = text;
    body.replaceChildren(...answer.judicators.map((j) => el("tr", {},
      el("td", { "data-label": "Name", class: "mono", text: j.name }),
      el("td", { "data-label": "Address", class: "mono", text: j.address }))));
    if (count === 0) body.append(el("tr", {}, el("td", { colspan: 2, class: "empty", text: "No judicator known." })));
  }
  markLoaded();
  return true;
}

poll(load, REFRESH_MS);
