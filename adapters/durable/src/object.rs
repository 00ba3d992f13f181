use crypt_domain::{Deletion, ReceiptDigest, Record};
use std::cell::Cell;
use worker::js_sys::Date;
use worker::wasm_bindgen::JsValue;
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, Result, ScheduledTime, SqlStorage, SqlStorageValue,
    State,
};

/// One message's Durable Object (SQLite-backed). Its table `m` holds at most one row, the
/// encoded [`Record`] (the message while a view is left, and the receipt); its alarm is set at
/// the message's expiry, when the whole object is freed.
///
/// Every step that decides something (is the id live? spend a view; is this the receipt's
/// owner? delete) reads and writes the row with synchronous SQLite calls and no `await` in
/// between, and a Durable Object runs one event at a time, so no other request can interleave
/// with it.
#[durable_object(alarm)]
pub struct MessageObject {
    state: State,
    /// Whether table `m` exists, once this instance has looked (`deleteAll` drops it).
    table: Cell<Option<bool>>,
}

impl std::fmt::Debug for MessageObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageObject").field("table", &self.table.get()).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    Date::now() as u64
}

fn status(code: u16) -> Result<Response> {
    Ok(Response::empty()?.with_status(code))
}

impl MessageObject {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    /// Whether table `m` exists; asks SQLite once per instance. Reading never creates it, so a
    /// read of an id that was never stored leaves no storage behind.
    fn has_table(&self, sql: &SqlStorage) -> Result<bool> {
        if let Some(known) = self.table.get() {
            return Ok(known);
        }
        let found =
            sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'm'", None)?.raw().next().is_some();
        self.table.set(Some(found));
        Ok(found)
    }

    /// The stored record's bytes, if the table holds one: its pieces joined in order (a record
    /// written before files existed is one row, and reads the same way).
    fn held(&self, sql: &SqlStorage) -> Result<Option<Vec<u8>>> {
        if !self.has_table(sql)? {
            return Ok(None);
        }
        let mut joined: Option<Vec<u8>> = None;
        for row in sql.exec("SELECT body FROM m ORDER BY rowid", None)?.raw() {
            let Some(piece) = blob(row?.into_iter().next()) else { continue };
            match &mut joined {
                None => joined = Some(piece),
                Some(bytes) => bytes.extend_from_slice(&piece),
            }
        }
        Ok(joined)
    }

    /// Writes `bytes` as the table's rows, in pieces of at most [`ROW_BYTES`] (a Durable
    /// Object's SQLite refuses a value over 2 MB), numbered in order. The caller emptied the
    /// table. No await: with the reads before it, one step no other request interleaves with.
    fn put(&self, sql: &SqlStorage, bytes: &[u8]) -> Result<()> {
        for (i, piece) in bytes.chunks(ROW_BYTES).enumerate() {
            let values = vec![SqlStorageValue::Integer(i as i64 + 1), SqlStorageValue::Blob(piece.to_vec())];
            sql.exec("INSERT INTO m (rowid, body) VALUES (?, ?)", values)?;
        }
        Ok(())
    }

    /// Drops everything this object stores, the alarm too: an empty object costs nothing.
    async fn free(&self) -> Result<()> {
        self.table.set(Some(false));
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await
    }

    async fn insert(&self, mut req: Request) -> Result<Response> {
        let bytes = req.bytes().await?;
        let Ok(record) = Record::decode(bytes.clone()) else {
            return status(400);
        };
        let sql = self.sql();
        // The step that decides, with no await inside: is a live record held (a message, or
        // the receipt of one already read or deleted, which keeps the id until its expiry)?
        // If not, write.
        if let Some(held) = self.held(&sql)? {
            let live = Record::decode(held).map(|r| !r.is_expired(now())).unwrap_or(false);
            if live {
                return status(409);
            }
            sql.exec("DELETE FROM m", None)?;
        } else if !self.has_table(&sql)? {
            sql.exec("CREATE TABLE m (body BLOB NOT NULL)", None)?;
            self.table.set(Some(true));
        }
        self.put(&sql, &bytes)?;
        if let Err(e) = self.state.storage().set_alarm(alarm_at(record.expires_at)).await {
            // Without its alarm the record would never be freed: undo, and let the caller
            // answer 503 (it does not report the message as stored).
            sql.exec("DELETE FROM m", None)?;
            return Err(e);
        }
        status(201)
    }

    /// Spends one view at the reader's instant (the request's body).
    async fn view(&self, mut req: Request) -> Result<Response> {
        let Some(at) = instant(&req.bytes().await?) else {
            return status(400);
        };
        let sql = self.sql();
        // From here to the answer, no await: the row is read, the view spent and the row
        // written back in one step no other request can interleave with.
        let Some(mut record) = self.record(&sql)? else {
            return status(404);
        };
        let Some(viewed) = record.spend_view(at) else {
            // Expired, deleted or read to its end: nothing changes; the alarm frees it.
            return status(404);
        };
        // On the last view `record` no longer holds the message: its bytes leave the row now.
        self.write(&sql, &record)?;
        record.message = Some(viewed.message);
        Response::from_bytes(record.encode())
    }

    /// The record without its message, whatever its expiry (the store decides at its instant).
    fn show(&self) -> Result<Response> {
        let Some(record) = self.record(&self.sql())? else {
            return status(404);
        };
        Response::from_bytes(Record { message: None, ..record }.encode())
    }

    /// The sender's delete: the receipt's digest and the instant (the request's body).
    async fn delete(&self, mut req: Request) -> Result<Response> {
        let body = req.bytes().await?;
        let digest = body.get(..32).and_then(|d| <[u8; 32]>::try_from(d).ok());
        let (Some(digest), Some(at)) = (digest, body.get(32..).and_then(instant)) else {
            return status(400);
        };
        let digest = ReceiptDigest::from_bytes(digest);
        let sql = self.sql();
        // One step, as in `view`: a delete and a read of the last view cannot both win.
        let Some(mut record) = self.record(&sql)? else {
            return status(404);
        };
        if !record.owned_by(&digest, at) {
            return status(404);
        }
        // 200 when this delete destroyed the message, 208 when nothing was left to destroy.
        let deletion = record.delete();
        if deletion == Deletion::Deleted {
            self.write(&sql, &record)?;
        }
        let status = if deletion == Deletion::Deleted { 200 } else { 208 };
        Ok(Response::from_bytes(Record { message: None, ..record }.encode())?.with_status(status))
    }

    /// The record the table holds, decoded; `None` when there is none.
    fn record(&self, sql: &SqlStorage) -> Result<Option<Record>> {
        let Some(held) = self.held(sql)? else {
            return Ok(None);
        };
        Record::decode(held).map(Some).map_err(|e| worker::Error::RustError(format!("stored record is corrupt: {e}")))
    }

    /// Overwrites the record's rows with `record`.
    fn write(&self, sql: &SqlStorage, record: &Record) -> Result<()> {
        sql.exec("DELETE FROM m", None)?;
        self.put(sql, &record.encode())
    }

    #[cfg(feature = "inspect")]
    async fn inspect(&self) -> Result<Response> {
        let sql = self.sql();
        let rows = if self.has_table(&sql)? { sql.exec("SELECT body FROM m", None)?.raw().count() } else { 0 };
        let alarm = self.state.storage().get_alarm().await?;
        let alarm = alarm.map_or_else(|| "none".to_owned(), |a| a.to_string());
        let message =
            self.record(&sql)?.and_then(|r| r.message).map_or_else(|| "none".to_owned(), |m| m.len().to_string());
        let tables = self.tables(&sql)?;
        Response::ok(format!(
            "rows={rows} alarm={alarm} tables={} bytes={} names={} message={message}",
            tables.len(),
            sql.database_size(),
            tables.join(",")
        ))
    }
}

#[cfg(feature = "inspect")]
impl MessageObject {
    /// The names of the tables the object's database holds (none once `deleteAll` ran).
    fn tables(&self, sql: &SqlStorage) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for row in sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'", None)?.raw() {
            if let Some(SqlStorageValue::String(name)) = row?.into_iter().next() {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// The most bytes one row holds: a record larger than this (a file, SPEC Part 2 item 11) is
/// split across rows. Cloudflare's limit for a string, BLOB or row is 2 MB; 1 MiB leaves room.
const ROW_BYTES: usize = 1 << 20;

/// The alarm's time for a record that expires at `expires_at`.
fn alarm_at(expires_at: u64) -> ScheduledTime {
    ScheduledTime::new(Date::new(&JsValue::from_f64(expires_at as f64)))
}

/// An instant sent as 8 bytes big-endian.
fn instant(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

fn blob(value: Option<SqlStorageValue>) -> Option<Vec<u8>> {
    match value {
        Some(SqlStorageValue::Blob(bytes)) => Some(bytes),
        _ => None,
    }
}

impl DurableObject for MessageObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state, table: Cell::new(None) }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/insert") => self.insert(req).await,
            (Method::Post, "/view") => self.view(req).await,
            (Method::Get, "/record") => self.show(),
            (Method::Post, "/delete") => self.delete(req).await,
            (Method::Get, "/ping") => status(204),
            #[cfg(feature = "inspect")]
            (Method::Get, "/inspect") => self.inspect().await,
            _ => status(400),
        }
    }

    /// At the message's expiry: free the object, receipt included, unless a newer record
    /// (stored after the old one expired, with its own alarm) is still live.
    async fn alarm(&self) -> Result<Response> {
        let sql = self.sql();
        if let Some(held) = self.held(&sql)? {
            if let Ok(record) = Record::decode(held) {
                if !record.is_expired(now()) {
                    self.state.storage().set_alarm(alarm_at(record.expires_at)).await?;
                    return status(204);
                }
            }
        }
        self.free().await?;
        status(204)
    }
}
