//! In-crate tests of the node.
