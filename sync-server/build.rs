//! The commit this binary is built from: see `shared/build/commit.rs`,
//! which both binaries share.
include!("../shared/build/commit.rs");
