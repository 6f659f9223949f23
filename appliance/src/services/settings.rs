//! The replicated settings: checked ([`postern_api::settings::check`]), committed through
//! the leader, read linearizably. The daemon's readers pick them up as they are applied
//! (`crate::views::StateMirror`).

use std::collections::BTreeMap;
use std::sync::Arc;

use postern_cluster::state::Command;

use crate::member::{Member, MemberError};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A malformed key, an unknown key in Postern's sections, or a bad value.
    #[error("{0}")]
    Invalid(String),
    #[error("no setting {0}")]
    NotSet(String),
    #[error(transparent)]
    Member(#[from] MemberError),
}

/// The settings service.
#[derive(Debug, Clone)]
pub struct Settings {
    pub member: Arc<Member>,
}

impl Settings {
    pub async fn set(&self, key: String, value: String) -> Result<(), SettingsError> {
        postern_api::settings::check(&key, &value).map_err(SettingsError::Invalid)?;
        self.member
            .propose(Command::PutSetting { key, value })
            .await?;
        Ok(())
    }

    /// Removes a setting: Postern's settings fall back to each node's configuration file.
    pub async fn unset(&self, key: String) -> Result<(), SettingsError> {
        match self
            .member
            .propose(Command::RemoveSetting { key: key.clone() })
            .await
        {
            Err(MemberError::NotFound(_)) => Err(SettingsError::NotSet(key)),
            other => Ok(other?),
        }
    }

    pub async fn get(&self, key: String) -> Result<String, SettingsError> {
        let state = self.member.read().await?;
        state
            .settings
            .get(&key)
            .cloned()
            .ok_or(SettingsError::NotSet(key))
    }

    pub async fn list(&self) -> Result<BTreeMap<String, String>, SettingsError> {
        Ok(self.member.read().await?.settings)
    }
}
