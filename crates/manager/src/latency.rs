//! The latency model that picks the fastest signers: per node, an exponentially smoothed
//! prepare → ready time, fed by every signing and presigning prepare. Signing takes the t
//! ready first; the presignature pools are filled for [`Latency::preferred`] sets.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use cohort_wire::Address;

use crate::locks::lock;
use crate::persist::registry::KeyEntry;

/// Smoothed prepare → ready latency per node, in ms.
#[derive(Default)]
pub(crate) struct Latency(Mutex<HashMap<Address, f64>>);

impl Latency {
    /// Records how fast `node` answered a prepare (weight 0.2 for the new sample).
    pub(crate) fn observe(&self, node: Address, ms: f64) {
        let mut l = lock(&self.0);
        let e = l.entry(node).or_insert(ms);
        *e = 0.8 * *e + 0.2 * ms;
    }

    /// The key's preferred signer set: the t `connected` holders that answer fastest (never
    /// measured = slowest; ties by share order), in share order so every node sees one list.
    pub(crate) fn preferred(&self, key: &KeyEntry, connected: &[Address]) -> Option<Vec<Address>> {
        let connected: HashSet<&Address> = connected.iter().collect();
        let lat = lock(&self.0);
        let mut holders: Vec<(f64, usize, Address)> = key
            .parties
            .iter()
            .enumerate()
            .filter(|(_, p)| connected.contains(p))
            .map(|(i, p)| (lat.get(p).copied().unwrap_or(f64::MAX), i, *p))
            .collect();
        let t = usize::from(key.threshold);
        if holders.len() < t {
            return None;
        }
        holders.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut chosen: Vec<(usize, Address)> =
            holders[..t].iter().map(|(_, i, a)| (*i, *a)).collect();
        chosen.sort();
        Some(chosen.into_iter().map(|(_, a)| a).collect())
    }
}
