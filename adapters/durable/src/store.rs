use crate::{route, BINDING, PING_OBJECT};
use async_trait::async_trait;
use crypt_domain::{Inserted, MessageId, MessageStore, StoreError, StoredMessage, Ttl};
use worker::js_sys::Uint8Array;
use worker::{Method, ObjectNamespace, Request, RequestInit, Response, Stub};

/// Messages in Durable Objects, one object per message, named by its id.
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

    /// What the object for `id` holds (`rows=<n> alarm=<ms or none>`), for tests. The object
    /// answers it only in bundles built with its `inspect` feature.
    pub async fn inspect(&self, id: &MessageId) -> Result<String, StoreError> {
        let mut resp = self.send(id.as_str(), route::INSPECT, Method::Get, None).await?;
        resp.text().await.map_err(unavailable)
    }
}

#[async_trait(?Send)]
impl MessageStore for DurableMessageStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, _ttl: Ttl) -> Result<Inserted, StoreError> {
        let resp = self.send(id.as_str(), route::INSERT, Method::Post, Some(message.encode())).await?;
        match resp.status_code() {
            201 => Ok(Inserted::Stored),
            409 => Ok(Inserted::Taken),
            _ => Err(unexpected("insert", &resp)),
        }
    }

    async fn take(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let mut resp = self.send(id.as_str(), route::TAKE, Method::Post, None).await?;
        match resp.status_code() {
            200 => {
                let bytes = resp.bytes().await.map_err(unavailable)?;
                StoredMessage::decode(bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Unavailable(format!("durable object value is corrupt: {e}")))
            }
            404 => Ok(None),
            _ => Err(unexpected("take", &resp)),
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
