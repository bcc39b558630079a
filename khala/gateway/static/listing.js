// A page that lists what one seed API endpoint answers as a table, refreshed every few seconds
// (the executors and judicators pages). The page has <table id=KEY> and <p id=message>.
import { el, getJSON, markLoaded, poll, RESULTS, say } from "./common.js";

// url: the endpoint; key: the list in its answer (and the table's id); what: the plural
// noun for the error message; count(n): the status line; cells(item): the row's <td>s;
// empty: the row's text when there is none; refreshMs: how often.
export function showListing({ url, key, what, count, cells, empty, refreshMs }) {
  const table = document.getElementById(key);
  const body = table.querySelector("tbody");
  const columns = table.querySelectorAll("thead th").length;
  const message = document.getElementById("message");
  let shown = "";

  async function load() {
    let answer;
    try {
      answer = await getJSON(url);
    } catch (error) {
      say(message, `The ${what} could not be loaded: ${error.message}.`, "error");
      markLoaded("error");
      throw error;
    }
    if (answer.result !== 0) {
      say(message, RESULTS[answer.result] || `Result ${answer.result}.`, "error");
      markLoaded("error");
      return true;
    }
    const items = answer[key];
    say(message, count(items.length));
    const text = JSON.stringify(items);
    if (text !== shown) {
      shown = text;
      body.replaceChildren(...items.map((item) => el("tr", {}, ...cells(item))));
      if (items.length === 0) body.append(el("tr", {}, el("td", { colspan: columns, class: "empty", text: empty })));
    }
    markLoaded();
    return true;
  }

  poll(load, refreshMs);
}
