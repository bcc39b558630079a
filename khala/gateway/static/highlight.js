// Syntax highlighting of a task's source with Prism (vendored in /static/vendor/prism, loaded on
// demand as same-origin scripts). Only Prism.tokenize is used: the elements are built here from
// its tokens with textContent, so the source never passes through an HTML parser.

import { el } from "./common.js";

const BASE = "/static/vendor/prism/";
// The grammars each language needs, in load order (c, java and go build on clike; cpp on c).
const GRAMMARS = {
  c: ["clike", "c"], cpp: ["clike", "c", "cpp"], java: ["clike", "java"], go: ["clike", "go"],
  rust: ["rust"], python: ["python"],
};
const BY_PRESET = { c: "c", cpp: "cpp", python3: "python", java: "java", go: "go", rust: "rust" };
const BY_EXTENSION = { c: "c", h: "c", cc: "cpp", cpp: "cpp", cxx: "cpp", hpp: "cpp",
  py: "python", java: "java", go: "go", rs: "rust" };

const loaded = new Map();

function loadScript(name) {
  if (!loaded.has(name)) {
    loaded.set(name, new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = `${BASE}prism-${name}.min.js`;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`cannot load ${name}`));
      document.head.append(script);
    }));
  }
  return loaded.get(name);
}

export function grammarFor(preset, path) {
  if (preset && BY_PRESET[preset]) return BY_PRESET[preset];
  const ext = String(path).split(".").pop().toLowerCase();
  return BY_EXTENSION[ext] || null;
}

async function prism(grammar) {
  if (!window.Prism) window.Prism = { manual: true, disableWorkerMessageHandler: true };
  await loadScript("core");
  for (const name of GRAMMARS[grammar]) await loadScript(name);
  return window.Prism;
}

function build(parent, tokens) {
  for (const token of tokens) {
    if (typeof token === "string") {
      parent.append(document.createTextNode(token));
      continue;
    }
    const alias = Array.isArray(token.alias) ? token.alias : token.alias ? [token.alias] : [];
    const span = el("span", { class: ["token", token.type, ...alias].join(" ") });
    build(span, Array.isArray(token.content) ? token.content : [token.content]);
    parent.append(span);
  }
}

// A <pre><code> of `text`, highlighted when the language is known (plain text otherwise, or
// while the grammar loads).
export function codeBlock(text, preset, path) {
  const code = el("code", { text });
  const pre = el("pre", { class: "code" }, code);
  const grammar = grammarFor(preset, path);
  if (grammar) {
    code.dataset.language = grammar;
    prism(grammar).then((P) => {
      const tokens = P.tokenize(text, P.languages[grammar]);
      code.textContent = "";
      build(code, tokens);
      code.dataset.highlighted = "true";
    }).catch(() => {});
  }
  return pre;
}
