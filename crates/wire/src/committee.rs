//! The one rule for a committee: who holds (or will hold) a key and how many of them sign.
//!
//! Keygen, resharing and refresh all name an ordered list of parties and a threshold; the
//! manager checks them before it asks anyone, every node checks them again before it answers
//! ready, and the engine needs them in the same order. [`Committee::new`] is that check, written
//! once: the order is the share order (kept as given), no party twice, and a threshold in
//! `2..=n`. Membership of the cohort is a separate question ([`Committee::check_members`]),
//! because only the caller knows which membership applies.

use serde::{Deserialize, Serialize};

use crate::hex_types::Address;

/// An ordered committee with its threshold (number of signers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCommittee")]
pub struct Committee {
    parties: Vec<Address>,
    threshold: u16,
}

#[derive(Deserialize)]
struct RawCommittee {
    parties: Vec<Address>,
    threshold: u16,
}

impl TryFrom<RawCommittee> for Committee {
    type Error = CommitteeError;
    fn try_from(r: RawCommittee) -> Result<Self, Self::Error> {
        Committee::new(r.parties, r.threshold)
    }
}

/// Why a committee is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitteeError {
    /// A party is listed twice.
    #[error("party {0} is listed twice")]
    Duplicate(Address),
    /// Threshold outside `2..=n`.
    #[error("threshold {threshold} is not in 2..={n}")]
    Threshold {
        /// The threshold asked for.
        threshold: u16,
        /// The number of parties.
        n: usize,
    },
    /// More parties than a protocol index can name.
    #[error("{0} parties are more than {max}", max = u16::MAX)]
    TooMany(usize),
    /// A party that is not a member of the cohort.
    #[error("{0} is not a member")]
    NotAMember(Address),
}

impl Committee {
    /// Checks order-preserving uniqueness and the threshold range.
    pub fn new(parties: Vec<Address>, threshold: u16) -> Result<Self, CommitteeError> {
        if parties.len() > usize::from(u16::MAX) {
            return Err(CommitteeError::TooMany(parties.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &parties {
            if !seen.insert(*p) {
                return Err(CommitteeError::Duplicate(*p));
            }
        }
        if threshold < 2 || usize::from(threshold) > parties.len() {
            return Err(CommitteeError::Threshold {
                threshold,
                n: parties.len(),
            });
        }
        Ok(Committee { parties, threshold })
    }

    /// Refuses the first party that is not in `members`.
    pub fn check_members(&self, members: &[Address]) -> Result<(), CommitteeError> {
        match self.parties.iter().find(|p| !members.contains(p)) {
            Some(p) => Err(CommitteeError::NotAMember(*p)),
            None => Ok(()),
        }
    }

    /// Parties in share order.
    pub fn parties(&self) -> &[Address] {
        &self.parties
    }

    /// Signers needed.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// Number of parties.
    pub fn len(&self) -> usize {
        self.parties.len()
    }

    /// Never true for a checked committee; here for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.parties.is_empty()
    }

    /// Whether `a` is a party.
    pub fn contains(&self, a: &Address) -> bool {
        self.parties.contains(a)
    }

    /// Share index of `a` (0-based), if a party.
    pub fn index_of(&self, a: &Address) -> Option<u16> {
        self.parties
            .iter()
            .position(|p| p == a)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// The participants of a resharing to `self` dealt by `dealers`, in the one order every
    /// party numbers them (the engine's `ResharePlan::participants`): the dealers as given,
    /// then the new parties that are not dealers, in `self`'s order.
    pub fn reshare_participants(&self, dealers: &[Address]) -> Vec<Address> {
        let mut out = dealers.to_vec();
        out.extend(self.parties.iter().filter(|p| !dealers.contains(p)));
        out
    }

    /// The parties and threshold, for callers that need to own them.
    pub fn into_parts(self) -> (Vec<Address>, u16) {
        (self.parties, self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(b: u8) -> Address {
        Address([b; 20])
    }

    #[test]
    fn keeps_order_refuses_duplicates_and_bad_thresholds() {
        let c = Committee::new(vec![a(3), a(1), a(2)], 2).unwrap();
        assert_eq!(c.parties(), &[a(3), a(1), a(2)]);
        assert_eq!(c.index_of(&a(1)), Some(1));
        assert_eq!(
            Committee::new(vec![a(1), a(2), a(1)], 2),
            Err(CommitteeError::Duplicate(a(1)))
        );
        assert!(matches!(
            Committee::new(vec![a(1), a(2)], 1),
            Err(CommitteeError::Threshold { .. })
        ));
        assert!(matches!(
            Committee::new(vec![a(1), a(2)], 3),
            Err(CommitteeError::Threshold { .. })
        ));
        assert!(Committee::new(vec![], 2).is_err());
        assert_eq!(
            c.check_members(&[a(1), a(2)]),
            Err(CommitteeError::NotAMember(a(3)))
        );
        assert!(c.check_members(&[a(1), a(2), a(3), a(4)]).is_ok());
    }

    #[test]
    fn serde_checks_on_decode() {
        let c = Committee::new(vec![a(1), a(2)], 2).unwrap();
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Committee>(&s).unwrap(), c);
        let dup = s.replace(&a(2).to_string(), &a(1).to_string());
        assert!(serde_json::from_str::<Committee>(&dup).is_err());
    }

    #[test]
    fn reshare_participants_dealers_first() {
        let new = Committee::new(vec![a(4), a(2), a(5)], 2).unwrap();
        assert_eq!(
            new.reshare_participants(&[a(3), a(2)]),
            vec![a(3), a(2), a(4), a(5)]
        );
    }
}
