// The Worker baseline for `crypt-bench --worker`: the least JavaScript that does the same work
// as crypt's Worker on the same store, by default with none of crypt's rules (no limits, no
// validation beyond "message is a string", no CORS or security headers, no id-collision check
// on KV); the last two can be switched on (below).
//
//   POST /        {"message": "..."}  -> 200 {"id": "...", "expires_at": "..."}
//   GET  /<id>                        -> 200 {"message": "..."} once, then 404
//
// `STORE` in [vars] picks the store: "kv" (namespace MESSAGES) or "durable-object" (one
// BaselineObject per message, as crypt's MessageObject: a one-row SQLite table and an alarm).
// `CHECK_ID = "1"` adds the id check crypt makes on KV; `SPEC_HEADERS = "1"` adds the four
// headers the SPEC puts on every answer of crypt's (CORS, no-store, nosniff, no-referrer), so
// that with both the baseline gives the answers crypt gives, header for header.
import { DurableObject } from "cloudflare:workers";

const SPEC_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Cache-Control": "no-store",
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
};

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const TTL_SECS = 86400;

function randomId() {
  const bytes = new Uint8Array(5);
  crypto.getRandomValues(bytes);
  let id = "";
  for (const b of bytes) id += ALPHABET[b % ALPHABET.length];
  return id;
}

export default {
  async fetch(request, env) {
    return handle(request, env, env.SPEC_HEADERS === "1" ? SPEC_HEADERS : undefined);
  },
};

// Response.json with the status and, with SPEC_HEADERS, crypt's headers.
function answer(body, status, headers) {
  return Response.json(body, { status, headers });
}

async function handle(request, env, headers) {
  const url = new URL(request.url);
  const durable = env.STORE === "durable-object";
  if (request.method === "POST" && url.pathname === "/") {
    let message;
    try {
      message = (await request.json()).message;
    } catch {
      return answer({ error: "Invalid JSON body" }, 400, headers);
    }
    if (typeof message !== "string" || message === "") {
      return answer({ error: "Message is required" }, 400, headers);
    }
    const id = randomId();
    const expiresAt = Date.now() + TTL_SECS * 1000;
    const value = JSON.stringify({ message, expires_at: expiresAt });
    if (durable) {
      const stub = env.MESSAGE_OBJECTS.get(env.MESSAGE_OBJECTS.idFromName(id));
      const r = await stub.fetch("https://message/insert", { method: "POST", body: value });
      if (r.status !== 201) return answer({ error: "Storage unavailable" }, 503, headers);
    } else {
      // CHECK_ID = "1": first make sure the id holds nothing, as the reference service (and
      // crypt) do; by default the baseline skips it.
      if (env.CHECK_ID === "1" && (await env.MESSAGES.get("m:" + id)) !== null) {
        return answer({ error: "Could not generate a unique ID" }, 500, headers);
      }
      await env.MESSAGES.put("m:" + id, value, { expirationTtl: TTL_SECS });
    }
    return answer({ id, expires_at: new Date(expiresAt).toISOString().slice(0, 19) + "Z" }, 200, headers);
  }
  if (request.method === "GET" && url.pathname.length > 1) {
    const id = url.pathname.slice(1);
    let value;
    if (durable) {
      const stub = env.MESSAGE_OBJECTS.get(env.MESSAGE_OBJECTS.idFromName(id));
      const r = await stub.fetch("https://message/take", { method: "POST" });
      value = r.status === 200 ? await r.text() : null;
    } else {
      value = await env.MESSAGES.get("m:" + id);
      if (value !== null) await env.MESSAGES.delete("m:" + id);
    }
    if (value === null) return answer({ error: "Message not found" }, 404, headers);
    const stored = JSON.parse(value);
    if (stored.expires_at <= Date.now()) return answer({ error: "Message not found" }, 404, headers);
    return answer({ message: stored.message }, 200, headers);
  }
  return answer({ error: "Not found" }, 404, headers);
}

// One message per object, as crypt's: a one-row table, an alarm at expiry, freed on read.
export class BaselineObject extends DurableObject {
  async fetch(request) {
    const sql = this.ctx.storage.sql;
    const path = new URL(request.url).pathname;
    if (path === "/insert") {
      const value = await request.text();
      sql.exec("CREATE TABLE IF NOT EXISTS m (body TEXT NOT NULL)");
      const held = sql.exec("SELECT body FROM m").toArray()[0];
      if (held && JSON.parse(held.body).expires_at > Date.now()) return new Response(null, { status: 409 });
      sql.exec("DELETE FROM m");
      sql.exec("INSERT INTO m (body) VALUES (?)", value);
      await this.ctx.storage.setAlarm(JSON.parse(value).expires_at);
      return new Response(null, { status: 201 });
    }
    if (path === "/take") {
      let row;
      try {
        row = sql.exec("DELETE FROM m RETURNING body").toArray()[0];
      } catch {
        return new Response(null, { status: 404 }); // no table: never stored
      }
      await this.ctx.storage.deleteAlarm();
      await this.ctx.storage.deleteAll();
      return row ? new Response(row.body) : new Response(null, { status: 404 });
    }
    return new Response(null, { status: 400 });
  }

  async alarm() {
    await this.ctx.storage.deleteAll();
  }
}
