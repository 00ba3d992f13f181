// The Worker baseline for `crypt-bench --worker`: the least JavaScript that does the same work
// as crypt's Worker on the same store, with none of crypt's rules (no limits, no validation
// beyond "message is a string", no CORS or security headers, no id-collision check on KV).
//
//   POST /        {"message": "..."}  -> 200 {"id": "...", "expires_at": "..."}
//   GET  /<id>                        -> 200 {"message": "..."} once, then 404
//
// `STORE` in [vars] picks the store: "kv" (namespace MESSAGES) or "durable-object" (one
// BaselineObject per message, as crypt's MessageObject: a one-row SQLite table and an alarm).
import { DurableObject } from "cloudflare:workers";

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
    const url = new URL(request.url);
    const durable = env.STORE === "durable-object";
    if (request.method === "POST" && url.pathname === "/") {
      let message;
      try {
        message = (await request.json()).message;
      } catch {
        return Response.json({ error: "Invalid JSON body" }, { status: 400 });
      }
      if (typeof message !== "string" || message === "") {
        return Response.json({ error: "Message is required" }, { status: 400 });
      }
      const id = randomId();
      const expiresAt = Date.now() + TTL_SECS * 1000;
      const value = JSON.stringify({ message, expires_at: expiresAt });
      if (durable) {
        const stub = env.MESSAGE_OBJECTS.get(env.MESSAGE_OBJECTS.idFromName(id));
        const r = await stub.fetch("https://message/insert", { method: "POST", body: value });
        if (r.status !== 201) return Response.json({ error: "Storage unavailable" }, { status: 503 });
      } else {
        // CHECK_ID = "1": first make sure the id holds nothing, as the reference service (and
        // crypt) do; by default the baseline skips it.
        if (env.CHECK_ID === "1" && (await env.MESSAGES.get("m:" + id)) !== null) {
          return Response.json({ error: "Could not generate a unique ID" }, { status: 500 });
        }
        await env.MESSAGES.put("m:" + id, value, { expirationTtl: TTL_SECS });
      }
      return Response.json({ id, expires_at: new Date(expiresAt).toISOString().slice(0, 19) + "Z" });
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
      if (value === null) return Response.json({ error: "Message not found" }, { status: 404 });
      const stored = JSON.parse(value);
      if (stored.expires_at <= Date.now()) return Response.json({ error: "Message not found" }, { status: 404 });
      return Response.json({ message: stored.message });
    }
    return Response.json({ error: "Not found" }, { status: 404 });
  },
};

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
