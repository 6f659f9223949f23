//! The one place where the services' errors become the command language's error kinds, and
//! so HTTP statuses: every variant of every service error is named here (no wildcard), so a
//! new failure must be classified before it compiles. Unavailable (no quorum, a commit that
//! timed out, a member between clusters, a peer out of reach) → 503; refused by the state →
//! 409; not found → 404; invalid input → 400; this node's own fault → 500.

use postern_api::{Error, ErrorKind};
use postern_cluster::join::JoinError;
use postern_crypto::keys::KeyStoreError;

use crate::member::MemberError;
use crate::member::membership::MembershipError;
use crate::network::NetworkError;
use crate::services::accounts::AccountError;
use crate::services::accounts::secrets::SecretError;
use crate::services::domains::DomainsError;
use crate::services::keys::KeysError;
use crate::services::settings::SettingsError;
use crate::services::vips::VipError;
use crate::update::StageError;
use crate::views::SealingError;

/// Every service's failure, as the dispatcher receives it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Vips(#[from] VipError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Domains(#[from] DomainsError),
    #[error("the command's task failed: {0}")]
    Task(String),
}

impl From<ServiceError> for Error {
    fn from(e: ServiceError) -> Error {
        Error::new(kind(&e), e.to_string())
    }
}

/// The kind of a service error.
pub fn kind(e: &ServiceError) -> ErrorKind {
    match e {
        ServiceError::Member(e) => member(e),
        ServiceError::Membership(e) => membership(e),
        ServiceError::Keys(e) => keys(e),
        ServiceError::Accounts(e) => accounts(e),
        ServiceError::Settings(e) => match e {
            SettingsError::Invalid(_) => ErrorKind::Invalid,
            SettingsError::NotSet(_) => ErrorKind::NotFound,
            SettingsError::Member(m) => member(m),
        },
        ServiceError::Vips(e) => match e {
            VipError::BadAddress(_) | VipError::BadInterface(_) | VipError::NotAMember(_) => {
                ErrorKind::Invalid
            }
            VipError::NoSuchVip(_) => ErrorKind::NotFound,
            VipError::Member(m) => member(m),
        },
        ServiceError::Stage(e) => match e {
            StageError::Invalid(_) => ErrorKind::Invalid,
            StageError::Conflict(_) => ErrorKind::Conflict,
        },
        ServiceError::Network(e) => match e {
            NetworkError::Invalid(_) => ErrorKind::Invalid,
            NetworkError::Unreadable(_) | NetworkError::Io { .. } => ErrorKind::Internal,
        },
        ServiceError::Domains(e) => match e {
            DomainsError::NotOurs(_) | DomainsError::NoKey(_) | DomainsError::NotPinned(_) => {
                ErrorKind::NotFound
            }
            DomainsError::BadDomain(_) => ErrorKind::Invalid,
            DomainsError::NoDiscovery => ErrorKind::Conflict,
            DomainsError::TimedOut(..) => ErrorKind::Unavailable,
            DomainsError::Keys(k) => keys(k),
        },
        ServiceError::Task(_) => ErrorKind::Internal,
    }
}

fn member(e: &MemberError) -> ErrorKind {
    match e {
        MemberError::NotInCluster
        | MemberError::Stopped
        | MemberError::NoQuorum(_)
        | MemberError::NotCommitted(_) => ErrorKind::Unavailable,
        MemberError::Refused(_) => ErrorKind::Conflict,
        MemberError::NotFound(_) => ErrorKind::NotFound,
        MemberError::Unexpected(_) | MemberError::Start(_) | MemberError::Ca(_) => {
            ErrorKind::Internal
        }
    }
}

fn membership(e: &MembershipError) -> ErrorKind {
    match e {
        MembershipError::Member(m) => member(m),
        MembershipError::TtlOutOfRange(_)
        | MembershipError::BadPeer(_)
        | MembershipError::RemoveSelf => ErrorKind::Invalid,
        MembershipError::HasMembers { .. }
        | MembershipError::AlreadyMember(_)
        | MembershipError::BelongsElsewhere { .. }
        | MembershipError::HoldsData { .. }
        | MembershipError::SetUp
        | MembershipError::LastVoter => ErrorKind::Conflict,
        MembershipError::Join(j) => join(j),
        MembershipError::NotAMember(_) => ErrorKind::NotFound,
        MembershipError::Aborted { .. } | MembershipError::StillConfigured(_) => {
            ErrorKind::Unavailable
        }
        MembershipError::Leave(_) => ErrorKind::Internal,
    }
}

/// A join's refusal is one kind whatever the reason: expired, spent, unknown or foreign
/// credentials are all refused by the cluster (409); unreadable ones are bad input.
fn join(e: &JoinError) -> ErrorKind {
    match e {
        JoinError::Unreadable(_) => ErrorKind::Invalid,
        JoinError::Expired(_) | JoinError::Untrusted { .. } | JoinError::Refused(_) => {
            ErrorKind::Conflict
        }
        JoinError::Unreachable { .. } => ErrorKind::Unavailable,
    }
}

fn keys(e: &KeysError) -> ErrorKind {
    match e {
        KeysError::Store(s) => store(s),
        KeysError::Base64 { .. } => ErrorKind::Invalid,
        KeysError::NotEnrolled(_) | KeysError::NoPgp(_) => ErrorKind::NotFound,
        KeysError::NoCa => ErrorKind::Unavailable,
        KeysError::Member(m) => member(m),
        KeysError::Task(_) => ErrorKind::Internal,
    }
}

fn store(e: &KeyStoreError) -> ErrorKind {
    match e {
        // What the admin handed in does not parse or does not fit.
        KeyStoreError::Pgp(_)
        | KeyStoreError::Openssl(_)
        | KeyStoreError::BadAddress(_)
        | KeyStoreError::Pkcs12
        | KeyStoreError::NoAddress
        | KeyStoreError::NoSecret
        | KeyStoreError::NoKey
        | KeyStoreError::NoDomainKey
        | KeyStoreError::WrongDomain { .. }
        | KeyStoreError::Expired(_) => ErrorKind::Invalid,
        KeyStoreError::NotEnrolled(_) => ErrorKind::NotFound,
        KeyStoreError::Replication(_) => ErrorKind::Unavailable,
        KeyStoreError::Refused(_) => ErrorKind::Conflict,
        // The store's own data or keys are broken.
        KeyStoreError::Corrupt(_) | KeyStoreError::Seal(_) | KeyStoreError::Ca(_) => {
            ErrorKind::Internal
        }
    }
}

fn accounts(e: &AccountError) -> ErrorKind {
    match e {
        AccountError::BadName { .. }
        | AccountError::BadRole(_)
        | AccountError::Setting(_)
        | AccountError::Certificate(_) => ErrorKind::Invalid,
        AccountError::Secret(s) => match s {
            SecretError::WeakPassword => ErrorKind::Invalid,
            SecretError::Hash(_) | SecretError::Random => ErrorKind::Internal,
        },
        AccountError::AdminExists(_)
        | AccountError::TokenExists(_)
        | AccountError::AlreadySetUp => ErrorKind::Conflict,
        AccountError::NoSuchAdmin(_) => ErrorKind::NotFound,
        AccountError::Sealing(s) => match s {
            SealingError::NoClusterKey => ErrorKind::Unavailable,
            SealingError::Seal(_) => ErrorKind::Internal,
        },
        AccountError::Member(m) => member(m),
    }
}
