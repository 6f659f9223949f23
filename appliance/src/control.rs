//! The control socket (`data_dir/control.sock`, mode 0600: root or the postern user only)
//! that `posternctl` speaks to: one JSON [`Command`] per connection in, one [`Response`]
//! out, executed by the [`Dispatcher`] for the local actor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_api::{Actor, Command, Error, ErrorKind, Reply};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixListener;

use crate::dispatch::Dispatcher;

/// Largest request accepted (a PKCS#12 bundle or a keyring, base64).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// The answer to one command on the socket: `ok` with the reply's JSON as `data`, or the
/// error's message and kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    pub fn err(e: Error) -> Response {
        Response {
            ok: false,
            error: Some(e.message),
            kind: Some(e.kind),
            data: serde_json::Value::Null,
        }
    }
}

impl From<Result<Reply, Error>> for Response {
    fn from(r: Result<Reply, Error>) -> Response {
        match r.and_then(|reply| {
            serde_json::to_value(reply).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
        }) {
            Ok(data) => Response {
                ok: true,
                error: None,
                kind: None,
                data,
            },
            Err(e) => Response::err(e),
        }
    }
}

/// The socket path inside a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// Binds the control socket (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Serves the control socket until the task is dropped.
pub async fn serve(listener: UnixListener, dispatcher: Dispatcher) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = Vec::new();
            let mut reader = BufReader::new(r).take(MAX_REQUEST as u64);
            let read =
                tokio::time::timeout(Duration::from_secs(30), reader.read_until(b'\n', &mut line))
                    .await;
            let refused = |m: String| Response::err(Error::invalid(m));
            let response = match read {
                Ok(Ok(_)) => match serde_json::from_slice::<Command>(&line) {
                    Ok(cmd) => dispatcher.run(cmd, Actor::local()).await.into(),
                    Err(e) => refused(format!("bad request: {e}")),
                },
                Ok(Err(e)) => refused(format!("read error: {e}")),
                Err(_) => refused("request timed out".into()),
            };
            let mut out = serde_json::to_vec(&response).unwrap_or_default();
            out.push(b'\n');
            let _ = w.write_all(&out).await;
        });
    }
}
