//! Who asks: roles, surfaces, actors.

use serde::{Deserialize, Serialize};

/// What a command needs of its actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sees everything except secrets, changes nothing.
    Readonly,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "readonly" => Some(Role::Readonly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Readonly => "readonly",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which surface a command came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Gui,
    Api,
    Cli,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Gui => "gui",
            Via::Api => "api",
            Via::Cli => "cli",
        }
    }
}

/// Who asks: an authenticated administrator, an API token, or the local control socket
/// (root on the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Actor {
    /// The control socket: whoever can open it is root (or the postern user) on the node.
    pub fn local() -> Actor {
        Actor {
            name: "local".into(),
            role: Role::Admin,
            via: Via::Cli,
        }
    }
}
