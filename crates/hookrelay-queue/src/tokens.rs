//! Per-project API tokens in Redis, stored by hash only.
//!
//! Two keys per token (see `hookrelay_core::keys`): the project's `tokens:{project}` HASH
//! (name → record, for listing and deleting) and `token:{sha256}` (hash → grant, for the
//! one look-up each request with a project token makes). Both are written and removed
//! together, atomically. Nothing is cached in the API processes, so a deleted token stops
//! working for every process with the next request.

use hookrelay_core::Keys;
use hookrelay_core::token::{TokenGrant, TokenRecord};

use crate::{Queue, QueueError};

/// Adds the record and the grant, unless the name is taken. KEYS: tokens hash, grant key.
/// ARGV: name, record JSON, grant JSON. Returns 1 when added, 0 when the name is taken.
const CREATE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
";

/// Removes the record and the grant if the record still holds the same hash. KEYS: tokens
/// hash, grant key. ARGV: name, record JSON as read. Returns 1 when removed.
const DELETE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
";

/// The project tokens, over the queue's shared connection.
#[derive(Clone)]
pub struct TokenStore {
    conn: crate::conn::RedisConn,
    keys: Keys,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("prefix", &self.keys.prefix())
            .finish()
    }
}

impl TokenStore {
    /// A store sharing `queue`'s connection and key prefix.
    pub fn new(queue: &Queue) -> Self {
        Self {
            conn: queue.connection(),
            keys: queue.keys().clone(),
        }
    }

    /// Stores a new token of `project`; `false` when the name is taken.
    pub async fn create(&self, project: &str, record: &TokenRecord) -> Result<bool, QueueError> {
        let grant = TokenGrant {
            project: project.to_owned(),
            name: record.name.clone(),
            role: record.role,
        };
        let mut conn = self.conn.clone();
        let added: i64 = redis::Script::new(CREATE)
            .key(self.keys.tokens(project))
            .key(self.keys.token(&record.hash))
            .arg(&record.name)
            .arg(encode(record)?)
            .arg(encode(&grant)?)
            .invoke_async(&mut conn)
            .await?;
        Ok(added == 1)
    }

    /// The tokens of `project`, by name.
    pub async fn list(&self, project: &str) -> Result<Vec<TokenRecord>, QueueError> {
        let mut conn = self.conn.clone();
        let values: Vec<String> = redis::cmd("HVALS")
            .arg(self.keys.tokens(project))
            .query_async(&mut conn)
            .await?;
        let mut records = values
            .iter()
            .map(|v| decode::<TokenRecord>(v))
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// Deletes the token `name` of `project`; `false` when there is none. The token stops
    /// working at once, in every process.
    pub async fn delete(&self, project: &str, name: &str) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let tokens = self.keys.tokens(project);
        let stored: Option<String> = redis::cmd("HGET")
            .arg(&tokens)
            .arg(name)
            .query_async(&mut conn)
            .await?;
        let Some(stored) = stored else {
            return Ok(false);
        };
        let record: TokenRecord = decode(&stored)?;
        let removed: i64 = redis::Script::new(DELETE)
            .key(&tokens)
            .key(self.keys.token(&record.hash))
            .arg(name)
            .arg(&stored)
            .invoke_async(&mut conn)
            .await?;
        Ok(removed == 1)
    }

    /// What the token with this hash grants, if it exists.
    pub async fn grant(&self, hash: &str) -> Result<Option<TokenGrant>, QueueError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.keys.token(hash))
            .query_async(&mut conn)
            .await?;
        value.as_deref().map(decode).transpose()
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, QueueError> {
    serde_json::to_string(value).map_err(|e| QueueError::Protocol(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, QueueError> {
    // The error names what is wrong, never the stored value (it holds a hash).
    serde_json::from_str(value)
        .map_err(|e| QueueError::Protocol(format!("stored token record does not decode: {e}")))
}
