//! The client's cached routing table: placement (shard -> replicas), node addresses and the
//! leaders last seen, merged from every node's `ClusterStatus`.

use std::collections::HashMap;

use crate::proto::ClusterStatusResponse;

#[derive(Clone, Debug, Default)]
pub(crate) struct Routing {
    pub epoch: u64,
    pub shards: u32,
    pub addrs: HashMap<u64, String>,
    pub replicas: Vec<Vec<u64>>,
    /// `(leader id, term)` per shard, when known.
    pub leaders: Vec<Option<(u64, u64)>>,
}

impl Routing {
    /// Builds a table from several nodes' answers: the newest epoch's placement, and for each
    /// shard the leader reported with the highest term.
    pub fn merge(answers: &[ClusterStatusResponse]) -> Option<Routing> {
        let newest = answers.iter().filter(|a| a.shards > 0).max_by_key(|a| a.epoch)?;
        let shards = newest.shards;
        let mut r = Routing {
            epoch: newest.epoch,
            shards,
            addrs: newest.nodes.iter().map(|n| (n.id, n.addr.clone())).collect(),
            replicas: vec![Vec::new(); shards as usize],
            leaders: vec![None; shards as usize],
        };
        for s in &newest.shard_status {
            if let Some(slot) = r.replicas.get_mut(s.shard as usize) {
                *slot = s.replicas.clone();
            }
        }
        for a in answers {
            for s in a.shard_status.iter().filter(|s| s.hosted && s.leader_id != 0) {
                if let Some(slot) = r.leaders.get_mut(s.shard as usize) {
                    if slot.is_none_or(|(_, term)| s.term > term) {
                        *slot = Some((s.leader_id, s.term));
                    }
                }
            }
        }
        Some(r)
    }

    /// The shard of a user under this table's shard count.
    pub fn shard_of(&self, user_id: &str) -> u32 {
        ring::shard_for(user_id, self.shards.max(1))
    }

    /// Where to send shard `shard`'s requests on attempt `attempt`: the leader if known, then
    /// the replicas in turn.
    pub fn target(&self, shard: u32, attempt: usize) -> Option<String> {
        if let Some(Some((leader, _))) = self.leaders.get(shard as usize) {
            if attempt == 0 || attempt % 3 != 2 {
                if let Some(a) = self.addrs.get(leader) {
                    return Some(a.clone());
                }
            }
        }
        let reps = self.replicas.get(shard as usize)?;
        if reps.is_empty() {
            return None;
        }
        self.addrs.get(&reps[attempt % reps.len()]).cloned()
    }

    pub fn set_leader(&mut self, shard: u32, leader: u64, addr: &str) {
        if let Some(slot) = self.leaders.get_mut(shard as usize) {
            let term = slot.map_or(0, |(_, t)| t);
            *slot = Some((leader, term));
        }
        if leader != 0 && !addr.is_empty() {
            self.addrs.insert(leader, addr.to_string());
        }
    }

    /// Records the leader of `shard` by address (as a `NOT_LEADER` reply names it).
    pub fn set_leader_addr(&mut self, shard: u32, addr: &str) {
        match self.addrs.iter().find(|(_, a)| a.as_str() == addr).map(|(id, _)| *id) {
            Some(id) => self.set_leader(shard, id, addr),
            None => self.forget_leader(shard),
        }
    }

    pub fn forget_leader(&mut self, shard: u32) {
        if let Some(slot) = self.leaders.get_mut(shard as usize) {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{NodeStatus, ShardStatus};

    fn node(id: u64) -> NodeStatus {
        NodeStatus { id, addr: format!("n{id}:7000"), ..Default::default() }
    }

    /// Shard `shard`'s status as a node sees it: `leader` at `term` (0: unknown).
    fn shard(shard: u32, replicas: &[u64], hosted: bool, leader: u64, term: u64) -> ShardStatus {
        ShardStatus { shard, replicas: replicas.to_vec(), hosted, leader_id: leader, term, ..Default::default() }
    }

    fn answer(epoch: u64, nodes: &[u64], shard_status: Vec<ShardStatus>) -> ClusterStatusResponse {
        ClusterStatusResponse {
            epoch,
            shards: shard_status.len() as u32,
            nodes: nodes.iter().map(|&id| node(id)).collect(),
            shard_status,
            ..Default::default()
        }
    }

    #[test]
    fn merge_needs_a_placed_answer() {
        assert!(Routing::merge(&[]).is_none());
        let unplaced = ClusterStatusResponse { epoch: 3, shards: 0, nodes: vec![node(1)], ..Default::default() };
        assert!(Routing::merge(&[unplaced]).is_none());
    }

    #[test]
    fn merge_takes_the_newest_placement_and_the_highest_term_leaders() {
        let old = answer(4, &[1, 2], vec![shard(0, &[1, 2], true, 1, 9), shard(1, &[2, 1], true, 2, 3)]);
        let new = answer(5, &[1, 2, 3], vec![shard(0, &[3, 1], true, 3, 8), shard(1, &[3, 2], true, 3, 4)]);
        // A node without a replica of shard 1 reports a newer leader: not trusted.
        let outsider = answer(5, &[1, 2, 3], vec![shard(0, &[3, 1], false, 0, 0), shard(1, &[3, 2], false, 1, 99)]);
        let r = Routing::merge(&[old, new, outsider]).expect("placed");

        assert_eq!((r.epoch, r.shards), (5, 2));
        assert_eq!(r.replicas, vec![vec![3, 1], vec![3, 2]], "the newest epoch's placement");
        assert_eq!(r.addrs.len(), 3);
        assert_eq!(r.addrs.get(&3).map(String::as_str), Some("n3:7000"));
        // Leaders come from every answer, old epochs included: the highest term wins.
        assert_eq!(r.leaders, vec![Some((1, 9)), Some((3, 4))]);
    }

    #[test]
    fn merge_ignores_unknown_leaders_and_shards_out_of_range() {
        let mut a = answer(2, &[1, 2], vec![shard(0, &[1, 2], true, 0, 7)]);
        a.shard_status.push(shard(5, &[1], true, 1, 1));
        let r = Routing::merge(&[a]).expect("placed");
        assert_eq!(r.shards, 1);
        assert_eq!(r.replicas, vec![vec![1, 2]]);
        assert_eq!(r.leaders, vec![None]);
    }

    fn two_shards() -> Routing {
        let a = answer(1, &[1, 2, 3], vec![shard(0, &[1, 2, 3], true, 2, 5), shard(1, &[3, 1], true, 0, 0)]);
        Routing::merge(&[a]).expect("placed")
    }

    #[test]
    fn target_prefers_the_leader_and_tries_the_replicas_every_third_attempt() {
        let r = two_shards();
        let to: Vec<String> = (0..6).filter_map(|a| r.target(0, a)).collect();
        assert_eq!(to, ["n2:7000", "n2:7000", "n3:7000", "n2:7000", "n2:7000", "n3:7000"]);
        // No leader known: the replicas in turn.
        let to: Vec<String> = (0..4).filter_map(|a| r.target(1, a)).collect();
        assert_eq!(to, ["n3:7000", "n1:7000", "n3:7000", "n1:7000"]);
        assert_eq!(r.target(2, 0), None, "no such shard");
    }

    #[test]
    fn target_falls_back_to_the_replicas_when_the_leader_has_no_address() {
        let mut r = two_shards();
        r.set_leader(1, 9, "");
        assert_eq!(r.leaders[1], Some((9, 0)));
        assert_eq!(r.target(1, 0).as_deref(), Some("n3:7000"));
        r.replicas[1].clear();
        assert_eq!(r.target(1, 0), None);
    }

    #[test]
    fn set_leader_keeps_the_term_and_learns_the_address() {
        let mut r = two_shards();
        r.set_leader(0, 4, "n4:7000");
        assert_eq!(r.leaders[0], Some((4, 5)));
        assert_eq!(r.target(0, 0).as_deref(), Some("n4:7000"));
        r.set_leader(7, 5, "n5:7000");
        assert_eq!(r.leaders.len(), 2, "no slot for an unknown shard");
        assert_eq!(r.addrs.get(&5).map(String::as_str), Some("n5:7000"), "the address is still learnt");
    }

    #[test]
    fn set_leader_addr_resolves_a_known_address_and_forgets_an_unknown_one() {
        let mut r = two_shards();
        r.set_leader_addr(1, "n1:7000");
        assert_eq!(r.leaders[1], Some((1, 0)));
        assert_eq!(r.target(1, 0).as_deref(), Some("n1:7000"));
        r.set_leader_addr(0, "elsewhere:1");
        assert_eq!(r.leaders[0], None);
        r.forget_leader(1);
        assert_eq!(r.leaders, vec![None, None]);
    }
}
