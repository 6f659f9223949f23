//! The typed replies of the commands: what the API returns as JSON, what the GUI's pages
//! render, what `posternctl` prints. Field names are the wire format of the REST API
//! (`/api/v1/openapi.json` documents them); changing one changes the API.

pub mod accounts;
pub mod cluster;
pub mod keys;
pub mod node;

pub use accounts::*;
pub use cluster::*;
pub use keys::*;
pub use node::*;

/// Renders a secret-bearing struct's `Debug` without its secrets.
macro_rules! debug_without {
    ($ty:ident, $($shown:ident),*) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), &self.$shown))*
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use debug_without;
