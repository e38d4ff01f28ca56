//! img-proxy library root (module list filled in as modules land).

pub mod cluster;
pub mod pipeline;
pub mod worker;
