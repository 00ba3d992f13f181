// Samples a Worker's CPU under `wrangler dev` through its devtools inspector and prints where
// the time went, by function (self time), heaviest first.
//
//   node bench/worker/profile.mjs <inspector-port> <seconds> [top]
//
// Start the Worker with `wrangler dev --inspector-port <port>`, put load on it (for example
// `target/release/crypt-bench drive 127.0.0.1:<port> 8 100 <seconds>`), and run this at the same
// time. Wasm functions appear under their Rust names when the bundle keeps its name section.
import WebSocket from "ws";

const [port, seconds = "5", top = "40"] = process.argv.slice(2);
if (!port) {
  console.error("usage: node bench/worker/profile.mjs <inspector-port> <seconds> [top]");
  process.exit(2);
}
const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
let next = 1;
const pending = new Map();
const call = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params }));
  });
ws.on("message", (data) => {
  const msg = JSON.parse(data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
  }
});
ws.on("open", async () => {
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 100 });
  await call("Profiler.start");
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  const { profile } = await call("Profiler.stop");
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    // Anonymous functions are told apart by where they are (minified glue is all one line).
    const where = f.functionName ? "" : `:${f.lineNumber}:${f.columnNumber}`;
    const key = `${f.functionName || "(anonymous)"} ${f.url ? f.url.split("/").pop() + where : ""}`.trim();
    self.set(key, (self.get(key) || 0) + (dt[i] || 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(top));
  for (const [k, us] of rows) console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
  // By kind: the Worker's wasm, its JavaScript (glue, wrangler's wrapper), the runtime's
  // built-ins (Response, Headers, KV calls: no script), and the rest.
  const kinds = new Map();
  for (const [k, us] of self.entries()) {
    const kind = /\.wasm/.test(k)
      ? "wasm"
      : /\.(m?js)(:|$)/.test(k)
        ? "script js"
        : /^\((idle|program|garbage collector)\)/.test(k)
          ? k.split(" ")[0]
          : "built-ins and runtime";
    kinds.set(kind, (kinds.get(kind) || 0) + us);
  }
  console.log("--- by kind (ms of CPU, share of the busy time)");
  const busy = total - (kinds.get("(idle)") || 0);
  for (const [k, us] of [...kinds.entries()].sort((a, b) => b[1] - a[1])) {
    console.log(`${(us / 1000).toFixed(0).padStart(7)} ms  ${k === "(idle)" ? "" : ((100 * us) / busy).toFixed(1) + "%"}  ${k}`);
  }
  ws.close();
});
