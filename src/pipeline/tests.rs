//! Integration-style tests over generated fixtures.
