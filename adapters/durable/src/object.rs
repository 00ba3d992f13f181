use crypt_domain::StoredMessage;
use std::cell::Cell;
use worker::js_sys::Date;
use worker::wasm_bindgen::JsValue;
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, Result, ScheduledTime, SqlStorage, SqlStorageValue,
    State,
};

/// One message's Durable Object (SQLite-backed). Its table `m` holds at most one row, the
/// encoded [`StoredMessage`]; its alarm is set at the message's expiry.
///
/// Every step that decides something (is the id live? take the row) is a synchronous SQLite
/// call with no `await` inside it, and a Durable Object runs one event at a time, so no other
/// request can interleave with it.
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

    /// The stored message, if the table holds one.
    fn held(&self, sql: &SqlStorage) -> Result<Option<Vec<u8>>> {
        if !self.has_table(sql)? {
            return Ok(None);
        }
        Ok(sql
            .exec("SELECT body FROM m LIMIT 1", None)?
            .raw()
            .next()
            .transpose()?
            .and_then(|row| blob(row.into_iter().next())))
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
        let Ok(message) = StoredMessage::decode(bytes.clone()) else {
            return status(400);
        };
        let sql = self.sql();
        // The step that decides, with no await inside: is a live message held? If not, write.
        if let Some(held) = self.held(&sql)? {
            let live = StoredMessage::decode(held).map(|m| !m.is_expired(now())).unwrap_or(false);
            if live {
                return status(409);
            }
            sql.exec("DELETE FROM m", None)?;
        } else if !self.has_table(&sql)? {
            sql.exec("CREATE TABLE m (body BLOB NOT NULL)", None)?;
            self.table.set(Some(true));
        }
        sql.exec("INSERT INTO m (body) VALUES (?)", vec![SqlStorageValue::Blob(bytes)])?;
        let at = ScheduledTime::new(Date::new(&JsValue::from_f64(message.expires_at as f64)));
        if let Err(e) = self.state.storage().set_alarm(at).await {
            // Without its alarm the message would never be freed: undo, and let the caller
            // answer 503 (it does not report the message as stored).
            sql.exec("DELETE FROM m", None)?;
            return Err(e);
        }
        status(201)
    }

    async fn take(&self) -> Result<Response> {
        let sql = self.sql();
        if !self.has_table(&sql)? {
            return status(404);
        }
        // One statement reads and deletes: the burn.
        let row = sql.exec("DELETE FROM m RETURNING body", None)?.raw().next().transpose()?;
        let Some(body) = row.and_then(|row| blob(row.into_iter().next())) else {
            self.free().await?;
            return status(404);
        };
        // The message is gone from storage now; freeing the rest can only fail to tidy up, and
        // then the alarm still does it: the reader gets the message either way.
        if let Err(e) = self.free().await {
            worker::console_warn!("crypt: a durable object kept its storage after a read ({e}); its alarm frees it");
        }
        Response::from_bytes(body)
    }

    #[cfg(feature = "inspect")]
    async fn inspect(&self) -> Result<Response> {
        let sql = self.sql();
        let rows = if self.has_table(&sql)? { sql.exec("SELECT body FROM m", None)?.raw().count() } else { 0 };
        let alarm = self.state.storage().get_alarm().await?;
        let alarm = alarm.map_or_else(|| "none".to_owned(), |a| a.to_string());
        Response::ok(format!("rows={rows} alarm={alarm} tables={} bytes={}", self.tables(&sql)?, sql.database_size()))
    }
}

#[cfg(feature = "inspect")]
impl MessageObject {
    /// How many tables the object's database holds (0 once `deleteAll` ran).
    fn tables(&self, sql: &SqlStorage) -> Result<usize> {
        Ok(sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'", None)?.raw().count())
    }
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
            (Method::Post, "/take") => self.take().await,
            (Method::Get, "/ping") => status(204),
            #[cfg(feature = "inspect")]
            (Method::Get, "/inspect") => self.inspect().await,
            _ => status(400),
        }
    }

    /// At the message's expiry: free the object, unless a newer message (stored after the old
    /// one expired, with its own alarm) is still live.
    async fn alarm(&self) -> Result<Response> {
        let sql = self.sql();
        if let Some(held) = self.held(&sql)? {
            if let Ok(message) = StoredMessage::decode(held) {
                if !message.is_expired(now()) {
                    let at = ScheduledTime::new(Date::new(&JsValue::from_f64(message.expires_at as f64)));
                    self.state.storage().set_alarm(at).await?;
                    return status(204);
                }
            }
        }
        self.free().await?;
        status(204)
    }
}
