// Reads the files of a zip archive in the browser (stored or deflated entries; the browser's
// DecompressionStream inflates). Used for a zip of test cases. Returns [{ name, text }].

const utf8 = new TextDecoder("utf-8", { fatal: true });
const MAX_ENTRIES = 2000;

function u16(view, at) { return view.getUint16(at, true); }
function u32(view, at) { return view.getUint32(at, true); }

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export async function readZip(buffer) {
  const view = new DataView(buffer);
  let end = -1;
  for (let at = buffer.byteLength - 22; at >= Math.max(0, buffer.byteLength - 65557); at -= 1) {
    if (u32(view, at) === 0x06054b50) { end = at; break; }
  }
  if (end < 0) throw new Error("not a zip archive");
  const count = u16(view, end + 10);
  if (count > MAX_ENTRIES) throw new Error(`more than ${MAX_ENTRIES} files`);
  let at = u32(view, end + 16);
  const files = [];
  for (let i = 0; i < count; i += 1) {
    if (u32(view, at) !== 0x02014b50) throw new Error("a damaged zip directory");
    const method = u16(view, at + 10);
    const size = u32(view, at + 20);
    const nameLength = u16(view, at + 28);
    const extra = u16(view, at + 30);
    const comment = u16(view, at + 32);
    const local = u32(view, at + 42);
    const name = new TextDecoder().decode(new Uint8Array(buffer, at + 46, nameLength));
    at += 46 + nameLength + extra + comment;
    if (name.endsWith("/")) continue;
    const start = local + 30 + u16(view, local + 26) + u16(view, local + 28);
    const raw = new Uint8Array(buffer, start, size);
    let data;
    if (method === 0) data = raw;
    else if (method === 8) data = await inflate(raw);
    else throw new Error(`${name}: compression method ${method} is not supported`);
    let text;
    try {
      text = utf8.decode(data);
    } catch (error) {
      throw new Error(`${name} is not UTF-8 text`);
    }
    files.push({ name, text });
  }
  return files;
}

// Test cases from zip files named N.in and N.out (in any folder), ordered by N.
export function casesFromFiles(files) {
  const byNumber = new Map();
  for (const file of files) {
    const match = /(?:^|\/)(\d+)\.(in|out|ans)$/.exec(file.name);
    if (!match) continue;
    const entry = byNumber.get(Number(match[1])) || {};
    entry[match[2] === "in" ? "input" : "standard"] = file.text;
    byNumber.set(Number(match[1]), entry);
  }
  const numbers = [...byNumber.keys()].sort((a, b) => a - b);
  const missing = numbers.filter((n) => byNumber.get(n).input === undefined || byNumber.get(n).standard === undefined);
  if (missing.length) throw new Error(`case ${missing[0]} needs both ${missing[0]}.in and ${missing[0]}.out`);
  if (!numbers.length) throw new Error("no N.in / N.out files in the zip");
  return numbers.map((n) => byNumber.get(n));
}
