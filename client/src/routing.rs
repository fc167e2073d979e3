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
