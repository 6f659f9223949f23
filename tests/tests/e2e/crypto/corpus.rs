//! The Thunderbird peer corpora (../shared/interop/): Postern's inbound verdicts must equal
//! the reference tools' on every message, and no message may be lost or crash anything.
