//! Reply load balancing (HovercRaft): the leader names a *designated replier* for every log
//! entry. Every node applies every write, but only the replier answers the client, and a
//! read-only entry is executed by its replier alone — so reply bandwidth and read-only CPU
//! spread over the cluster instead of piling on the leader.
//!
//! Outstanding work of node `i` = entries assigned to `i` that `i` has not applied yet. Nodes
//! apply in log order, so the applied index each follower reports (`done` in AppendEntries
//! replies) says exactly which of its assignments are finished. Only nodes under the bound
//! are eligible; when none is, the request is refused (the caller answers DROP), which keeps
//! every node's outstanding work under the bound.
//!
//! The bound counts a node's assignments, not the rest of its backlog: a follower far behind
//! the leader (restarted, or catching up after a partition) with no assignments would look
//! idle, yet answer a new entry only after executing every write before it — tens of
//! milliseconds, while it may stay "live". So a follower is eligible only while its applied
//! index is within `max_lag` entries of the leader's own: it can then answer about as soon as
//! the leader could. (Healthy followers stay within a few hundred entries of the leader even
//! at saturation; the authors' JBSQ has no such rule, their followers never fall far behind
//! and stay live.)

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::wire::raft::NodeId;

/// How the leader picks among eligible nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplierPolicy {
    /// Uniformly at random among nodes under the bound (the paper's default).
    BoundedRandom,
    /// The node with the least outstanding work (JBSQ-like); ties go to the lowest id.
    LeastLoaded,
    /// Always the leader (vanilla Raft: the leader replies to everything).
    LeaderOnly,
}

pub struct ReplyBalancer {
    policy: ReplierPolicy,
    bound: usize,
    /// A follower whose applied index trails the leader's by more than this is not picked.
    max_lag: u64,
    /// Per node: indices assigned and not yet applied there, ascending.
    outstanding: Vec<VecDeque<u64>>,
    /// Per node: the highest applied index it reported.
    applied: Vec<u64>,
    scratch: Vec<NodeId>,
}

impl ReplyBalancer {
    pub fn new(nodes: usize, policy: ReplierPolicy, bound: usize, max_lag: u64) -> Self {
        ReplyBalancer {
            policy,
            bound: bound.max(1),
            max_lag,
            outstanding: vec![VecDeque::new(); nodes],
            applied: vec![0; nodes],
            scratch: Vec::with_capacity(nodes),
        }
    }

    /// Forgets all assignments (a new leader starts afresh).
    pub fn reset(&mut self) {
        for q in &mut self.outstanding {
            q.clear();
        }
    }

    pub fn outstanding(&self, node: NodeId) -> usize {
        self.outstanding[node as usize].len()
    }

    pub fn bound(&self) -> usize {
        self.bound
    }

    /// The oldest index assigned to `node` that it has not reported applied.
    pub fn oldest_owed(&self, node: NodeId) -> Option<u64> {
        self.outstanding[node as usize].front().copied()
    }

    /// Records that `node` applied everything up to `applied_index`.
    pub fn report_applied(&mut self, node: NodeId, applied_index: u64) {
        let i = node as usize;
        if applied_index <= self.applied[i] {
            return;
        }
        self.applied[i] = applied_index;
        let q = &mut self.outstanding[i];
        while q.front().is_some_and(|&x| x <= applied_index) {
            q.pop_front();
        }
    }

    /// Whether `node` may be named replier now: live, under the bound, and (a follower) not
    /// more than `max_lag` entries behind the leader's applied index.
    fn eligible(&self, node: NodeId, leader: NodeId, live: &impl Fn(NodeId) -> bool) -> bool {
        let behind = self.applied[leader as usize].saturating_sub(self.applied[node as usize]);
        live(node)
            && self.outstanding(node) < self.bound
            && (node == leader || behind <= self.max_lag)
    }

    /// Picks the replier for the entry that will sit at `index`; `None` if every node is at
    /// its bound. `leader` is the calling node (it reports its own applied index like any
    /// node); `live` says which nodes may be picked.
    pub fn choose(
        &mut self,
        index: u64,
        leader: NodeId,
        rng: &mut ChaCha8Rng,
        live: impl Fn(NodeId) -> bool,
    ) -> Option<NodeId> {
        let pick = match self.policy {
            ReplierPolicy::LeaderOnly => (self.outstanding(leader) < self.bound).then_some(leader),
            ReplierPolicy::BoundedRandom => {
                self.scratch.clear();
                for n in 0..self.outstanding.len() as NodeId {
                    if self.eligible(n, leader, &live) {
                        self.scratch.push(n);
                    }
                }
                if self.scratch.is_empty() {
                    None
                } else {
                    Some(self.scratch[rng.gen_range(0..self.scratch.len())])
                }
            }
            ReplierPolicy::LeastLoaded => (0..self.outstanding.len() as NodeId)
                .filter(|&n| self.eligible(n, leader, &live))
                .min_by_key(|&n| (self.outstanding(n), n)),
        }?;
        self.outstanding[pick as usize].push_back(index);
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bound_is_never_exceeded_and_applied_frees_slots() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut lb = ReplyBalancer::new(3, ReplierPolicy::BoundedRandom, 2, u64::MAX);
        let picks: Vec<_> = (1..=7)
            .map(|i| lb.choose(i, 0, &mut rng, |_| true))
            .collect();
        assert_eq!(picks.iter().filter(|p| p.is_some()).count(), 6);
        assert_eq!(picks[6], None, "all three nodes at the bound of 2");
        for n in 0..3 {
            assert_eq!(lb.outstanding(n), 2);
        }
        lb.report_applied(1, 7);
        assert_eq!(lb.outstanding(1), 0);
        assert_eq!(lb.choose(8, 0, &mut rng, |_| true), Some(1));
    }

    #[test]
    fn least_loaded_and_leader_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut lb = ReplyBalancer::new(3, ReplierPolicy::LeastLoaded, 10, u64::MAX);
        let picks: Vec<_> = (1..=6)
            .map(|i| lb.choose(i, 0, &mut rng, |_| true).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        let mut lb = ReplyBalancer::new(3, ReplierPolicy::LeaderOnly, 10, u64::MAX);
        assert_eq!(lb.choose(1, 2, &mut rng, |_| true), Some(2));
        // A node that is not live is never picked.
        let mut lb = ReplyBalancer::new(3, ReplierPolicy::BoundedRandom, 10, u64::MAX);
        for i in 1..50 {
            assert_ne!(lb.choose(i, 0, &mut rng, |n| n != 1), Some(1));
        }
    }

    #[test]
    fn a_follower_far_behind_the_leader_is_not_named_replier() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for policy in [ReplierPolicy::BoundedRandom, ReplierPolicy::LeastLoaded] {
            let mut lb = ReplyBalancer::new(3, policy, 64, 100);
            // Leader 0 applied 1000; follower 1 is 50 behind, follower 2 (restarted) 900.
            lb.report_applied(0, 1000);
            lb.report_applied(1, 950);
            lb.report_applied(2, 100);
            let picks: Vec<_> = (1001..1100)
                .map(|i| lb.choose(i, 0, &mut rng, |_| true).unwrap())
                .collect();
            assert!(!picks.contains(&2), "{policy:?}: {picks:?}");
            assert!(picks.contains(&1) && picks.contains(&0), "{policy:?}");
            // Once it has caught up to within the window it is picked again.
            lb.report_applied(2, 900);
            let picks: Vec<_> = (1100..1200)
                .filter_map(|i| lb.choose(i, 0, &mut rng, |_| true))
                .collect();
            assert!(picks.contains(&2), "{policy:?}: {picks:?}");
        }
        // The leader is never too far behind itself; leader-only ignores the window.
        let mut lb = ReplyBalancer::new(3, ReplierPolicy::LeaderOnly, 64, 0);
        lb.report_applied(1, 5000);
        assert_eq!(lb.choose(1, 0, &mut rng, |_| true), Some(0));
    }
}
