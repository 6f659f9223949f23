//! SMTP protocol code without I/O: command framing and parsing, the DATA receiver, the
//! reply catalogue, the envelope, the trace header and the session state machine.

pub mod command;
pub mod data;
pub mod envelope;
pub mod received;
pub mod reply;
pub mod session;
