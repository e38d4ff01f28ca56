//! The image pipeline: everything that looks inside image bytes.
//!
//! The worker calls into this module after an origin fetch; nothing here
//! does I/O, so it can be exercised from unit tests and the `transform`
//! command without a network.

pub mod sniff;
