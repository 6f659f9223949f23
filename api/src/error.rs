//! Why a command failed, as every surface shows it: a kind (which decides the HTTP status
//! and posternctl's exit) and a message for the operator. The daemon's services have error
//! enums of their own; the dispatcher turns them into this in one exhaustive place.

use serde::{Deserialize, Serialize};

/// The class of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request cannot be done as asked: malformed or out of range (400).
    Invalid,
    /// The actor's role does not allow it (403).
    Forbidden,
    /// The thing named does not exist (404).
    NotFound,
    /// The state refuses it (409): setup of a cluster that is set up, the last admin, a
    /// spent or expired join token, an update already being installed.
    Conflict,
    /// The cluster cannot commit or confirm now (503): no quorum, no leader, a commit that
    /// timed out, a member that is stopping or between clusters, a peer out of reach.
    Unavailable,
    /// This node failed at something that should not fail (500): a file it cannot write,
    /// the random generator. The message says what.
    Internal,
}

impl ErrorKind {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The name in API error bodies (`{"error": …, "kind": …}`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A failed command: its kind and the operator's message (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
