//! The `file` gateway: one JSON line per message, `{"to":"<digits>","text":"Code: 123456","at":"<RFC 3339>"}`
//! (the default, for local use and tests; `auth-server sms outbox` shows it).
//!
//! The line is written whole with a single `write_all` on a file opened with `O_APPEND`, then synced, so
//! a reader never sees half a line and a message is only reported sent once it is on disk. The file is
//! created with mode 0600, because it holds live codes. The webhook posts the same JSON object
//! ([`record_json`]). A failure to write is temporary (the disk may come back); the text is never put
//! into an error.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::{Clock, SmsMessage};
use serde::Serialize;

use super::{Provider, Receipt, SendError};

/// One message as the file and webhook gateways write it; the field order is the documented one.
#[derive(Serialize)]
struct Record<'a> {
    to: &'a str,
    text: &'a str,
    at: String,
}

/// The JSON object of one message.
pub fn record_json(msg: &SmsMessage, clock: &dyn Clock) -> Result<Vec<u8>, SendError> {
    let record = Record { to: &msg.to, text: msg.text.expose(), at: clock.now().to_string() };
    serde_json::to_vec(&record).map_err(|e| SendError::Temporary(format!("cannot encode: {e}")))
}

/// Appends one JSON line per message to a file.
pub struct FileGateway {
    path: Arc<PathBuf>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FileGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileGateway").field("path", &self.path).finish_non_exhaustive()
    }
}

impl FileGateway {
    /// A gateway writing to `path` (created with mode 0600 on the first message).
    pub fn new(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self { path: Arc::new(path.into()), clock }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn append_line(path: &Path, line: &[u8]) -> std::io::Result<()> {
    // Opened per message so that an operator may rotate or truncate the file at any time.
    let mut file = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
    file.write_all(line)?;
    file.sync_data()
}

#[async_trait]
impl Provider for FileGateway {
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError> {
        let mut line = record_json(msg, self.clock.as_ref())?;
        line.push(b'\n');
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || append_line(&path, &line))
            .await
            .map_err(|e| SendError::Temporary(format!("file writer task failed: {e}")))?
            .map_err(|e| {
                SendError::Temporary(format!("cannot append to {}: {e}", self.path.display()))
            })?;
        Ok(Receipt::new(format!("appended to {}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use auth_core::Timestamp;
    use auth_core::secret::SecretString;

    use super::*;

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            "2026-01-10T07:46:24.5Z".parse().unwrap()
        }
    }

    fn msg(code: &str) -> SmsMessage {
        SmsMessage {
            id: 41,
            to: "79123456789".to_owned(),
            text: SecretString::new(format!("Code: {code}")),
        }
    }

    #[tokio::test]
    async fn file_gateway_appends_one_json_line_per_message() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms-outbox.jsonl");
        let gw = FileGateway::new(&path, Arc::new(Fixed));
        gw.send(&msg("123456")).await.unwrap();
        gw.send(&msg("654321")).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"to":"79123456789","text":"Code: 123456","at":"2026-01-10T07:46:24.5Z"}"#,
                "\n",
                r#"{"to":"79123456789","text":"Code: 654321","at":"2026-01-10T07:46:24.5Z"}"#,
                "\n"
            )
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn file_gateway_failure_is_retryable() {
        let gw = FileGateway::new("/nonexistent-dir/sms.jsonl", Arc::new(Fixed));
        let e = gw.send(&msg("123456")).await.unwrap_err();
        assert!(matches!(&e, SendError::Temporary(m) if !m.contains("123456")), "{e:?}");
    }
}
