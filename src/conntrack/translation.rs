//! What a translated flow keeps beyond an untranslated one: its reply
//! tuple, which address translation made something other than the inverse
//! of the original (Linux's `ct->tuplehash[IP_CT_DIR_REPLY]` after
//! `nf_nat_setup_info`).
//!
//! Translations live in a pool of the table's ([`super::table`]), sized at
//! start for as many flows as the table holds when the config translates
//! anything, and empty otherwise, so a firewall without NAT pays nothing
//! for them.

use super::tuple::Tuple;

/// A translated flow's own data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The tuple of the flow's reply packets as they arrive.
    pub reply: Tuple,
}
