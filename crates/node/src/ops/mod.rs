//! One module per operation, each holding only that operation's rules (the rows of
//! [`crate::operations`]): what this node checks before it answers ready, and what it does on
//! start. The handshake bookkeeping is [`crate::session`]; running a protocol is
//! [`crate::compute::start`].

pub(crate) mod aux;
pub(crate) mod delete;
pub(crate) mod keygen;
pub(crate) mod presign;
pub(crate) mod reshare;
pub(crate) mod sign;
