//! The backend runs use: burn's pure-Rust `flex` CPU backend under autodiff.

pub type Backend = burn::backend::Autodiff<burn::backend::Flex>;
