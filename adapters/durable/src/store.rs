use crate::{route, BINDING, PING_OBJECT};
use async_trait::async_trait;
use crypt_domain::{
    DeleteOutcome, Deletion, Inserted, MessageId, MessageStore, ReceiptDigest, Record, StoreError, StoredMessage, Ttl,
    UnixMillis, Viewed,
};
use worker::js_sys::Uint8Array;
use worker::{Method, ObjectNamespace, Request, RequestInit, Response, Stub};

/// Messages and their receipts in Durable Objects, one object per message, named by its id.
#[derive(Debug)]
pub struct DurableMessageStore {
    namespace: ObjectNamespace,
}

fn unavailable(e: worker::Error) -> StoreError {
    StoreError::Unavailable(format!("durable object: {e}"))
}

fn unexpected(what: &str, resp: &Response) -> StoreError {
    StoreError::Unavailable(format!("durable object: {what} answered {}", resp.status_code()))
}

impl DurableMessageStore {
    /// A store over the namespace bound as [`BINDING`].
    pub fn new(namespace: ObjectNamespace) -> Self {
        Self { namespace }
    }

    /// The store on `env`'s [`BINDING`], or a sentence naming the binding when it is missing or
    /// is not a Durable Object namespace.
    pub fn from_env(env: &worker::Env) -> Result<Self, String> {
        env.durable_object(BINDING).map(Self::new).map_err(|e| {
            format!(
                "the Durable Object binding {BINDING} is missing or not a Durable Object namespace ({e}); see wrangler.toml"
            )
        })
    }

    fn object(&self, name: &str) -> Result<Stub, StoreError> {
        self.namespace.get_by_name(name).map_err(unavailable)
    }

    async fn send(&self, name: &str, url: &str, method: Method, body: Option<Vec<u8>>) -> Result<Response, StoreError> {
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(body) = body {
            init.with_body(Some(Uint8Array::from(body.as_slice()).into()));
        }
        let req = Request::new_with_init(url, &init).map_err(unavailable)?;
        self.object(name)?.fetch_with_request(req).await.map_err(unavailable)
    }

    /// Stores `bytes` under `id` as they are, as an insert does: for tests of rows written by
    /// an older build (the format-1 `StoredMessage::encode`). True when stored, false when the
    /// id is taken.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the object refuses it.
    #[cfg(feature = "inspect")]
    pub async fn insert_encoded(&self, id: &MessageId, bytes: Vec<u8>) -> Result<bool, StoreError> {
        let resp = self.send(id.as_str(), route::INSERT, Method::Post, Some(bytes)).await?;
        match resp.status_code() {
            201 => Ok(true),
            409 => Ok(false),
            _ => Err(unexpected("insert", &resp)),
        }
    }

    /// What the object for `id` holds (see [`route::INSPECT`]), for tests. The object
    /// answers it only in bundles built with its `inspect` feature.
    pub async fn inspect(&self, id: &MessageId) -> Result<String, StoreError> {
        let mut resp = self.send(id.as_str(), route::INSPECT, Method::Get, None).await?;
        resp.text().await.map_err(unavailable)
    }
}

/// The record in an object's answer.
async fn record_of(mut resp: Response) -> Result<Record, StoreError> {
    let bytes = resp.bytes().await.map_err(unavailable)?;
    Record::decode(bytes).map_err(|e| StoreError::Unavailable(format!("durable object value is corrupt: {e}")))
}

#[async_trait(?Send)]
impl MessageStore for DurableMessageStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, _ttl: Ttl) -> Result<Inserted, StoreError> {
        let resp = self.send(id.as_str(), route::INSERT, Method::Post, Some(Record::new(message).encode())).await?;
        match resp.status_code() {
            201 => Ok(Inserted::Stored),
            409 => Ok(Inserted::Taken),
            _ => Err(unexpected("insert", &resp)),
        }
    }

    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError> {
        let resp = self.send(id.as_str(), route::VIEW, Method::Post, Some(now.to_be_bytes().to_vec())).await?;
        match resp.status_code() {
            200 => {
                // The record after the view, with the message it gave.
                let record = record_of(resp).await?;
                let views_left = record.views_left();
                let message = record
                    .message
                    .ok_or_else(|| StoreError::Unavailable("durable object: a view answered no message".into()))?;
                Ok(Some(Viewed { message, views_left, expires_at: record.expires_at }))
            }
            404 => Ok(None),
            _ => Err(unexpected("view", &resp)),
        }
    }

    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError> {
        let resp = self.send(id.as_str(), route::RECORD, Method::Get, None).await?;
        match resp.status_code() {
            200 => Ok(Some(record_of(resp).await?).filter(|r| !r.is_expired(now))),
            404 => Ok(None),
            _ => Err(unexpected("record", &resp)),
        }
    }

    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError> {
        let mut body = Vec::with_capacity(40);
        body.extend_from_slice(receipt.as_bytes());
        body.extend_from_slice(&now.to_be_bytes());
        let resp = self.send(id.as_str(), route::DELETE, Method::Post, Some(body)).await?;
        match resp.status_code() {
            // 200: this delete destroyed the message; 208: there was nothing left to destroy.
            code @ (200 | 208) => {
                let deletion = if code == 200 { Deletion::Deleted } else { Deletion::AlreadyGone };
                Ok(Some(DeleteOutcome { deletion, receipt: record_of(resp).await?.receipt() }))
            }
            404 => Ok(None),
            _ => Err(unexpected("delete", &resp)),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let resp = self.send(PING_OBJECT, route::PING, Method::Get, None).await?;
        match resp.status_code() {
            204 => Ok(()),
            _ => Err(unexpected("ping", &resp)),
        }
    }
}
