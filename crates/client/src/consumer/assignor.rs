//! Partition assignors of the classic consumer protocol, run by the group leader.
//!
//! * `range` (Java's `RangeAssignor`): per topic, members subscribed to it in order, each gets
//!   a consecutive range; the first `partitions % members` get one extra.
//! * `roundrobin` (`RoundRobinAssignor`): every partition of every topic, in (topic,
//!   partition) order, dealt to the next member subscribed to its topic.
//! * `cooperative-sticky` (`CooperativeStickyAssignor`): keeps each member's owned partitions
//!   where it can, hands out the rest to the least loaded eligible member, then moves
//!   partitions from the most to the least loaded member until balanced. A partition that
//!   changes owner is left out of this generation's assignment (the owner revokes it, rejoins,
//!   and the partition is assigned in the follow-up rebalance): the two phases of incremental
//!   cooperative rebalancing (KIP-429).
//!
//! Members are ordered by `group.instance.id` when they have one, else by member id, like Java.

use crate::config::AssignorKind;
use fjord_common::TopicPartition;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One member's subscription as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberSubscription {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) owned: Vec<TopicPartition>,
    /// Generation the owned partitions belong to (`-1`: unknown).
    pub(crate) generation: i32,
}

impl MemberSubscription {
    fn sort_key(&self) -> (&str, &str) {
        (
            self.group_instance_id.as_deref().unwrap_or(&self.member_id),
            &self.member_id,
        )
    }
}

/// Member id → assigned partitions (every member is present, possibly with nothing).
pub(crate) type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// Runs `kind` over `members`; `partitions` gives each existing topic's partition count.
pub(crate) fn assign(
    kind: AssignorKind,
    members: &[MemberSubscription],
    partitions: &HashMap<String, i32>,
) -> Assignment {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut out = match kind {
        AssignorKind::Range => range(&sorted, partitions),
        AssignorKind::RoundRobin => round_robin(&sorted, partitions),
        AssignorKind::CooperativeSticky => cooperative_sticky(&sorted, partitions),
    };
    for list in out.values_mut() {
        list.sort();
    }
    out
}

fn empty(members: &[&MemberSubscription]) -> Assignment {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

fn range(members: &[&MemberSubscription], partitions: &HashMap<String, i32>) -> Assignment {
    let mut out = empty(members);
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let Some(&count) = partitions.get(topic) else {
            continue;
        };
        let subscribed: Vec<&&MemberSubscription> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .collect();
        if subscribed.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let per = count / n;
        let extra = count % n;
        for (i, m) in subscribed.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            if let Some(list) = out.get_mut(&m.member_id) {
                list.extend((start..start + len).map(|p| TopicPartition::new(topic.as_str(), p)));
            }
        }
    }
    out
}

fn all_partitions(
    members: &[&MemberSubscription],
    partitions: &HashMap<String, i32>,
) -> Vec<TopicPartition> {
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    topics
        .into_iter()
        .filter_map(|t| partitions.get(t).map(|c| (t, *c)))
        .flat_map(|(t, c)| (0..c.max(0)).map(move |p| TopicPartition::new(t.as_str(), p)))
        .collect()
}

fn round_robin(members: &[&MemberSubscription], partitions: &HashMap<String, i32>) -> Assignment {
    let mut out = empty(members);
    if members.is_empty() {
        return out;
    }
    let mut next = 0usize;
    for tp in all_partitions(members, partitions) {
        // The next member (circularly) subscribed to this topic.
        for step in 0..members.len() {
            let m = members[(next + step) % members.len()];
            if m.topics.contains(&tp.topic) {
                next = (next + step + 1) % members.len();
                if let Some(list) = out.get_mut(&m.member_id) {
                    list.push(tp);
                }
                break;
            }
        }
    }
    out
}

fn cooperative_sticky(
    members: &[&MemberSubscription],
    partitions: &HashMap<String, i32>,
) -> Assignment {
    let all = all_partitions(members, partitions);
    let exists: BTreeSet<&TopicPartition> = all.iter().collect();
    // Claims of the newest generation win; older claims are stale. A partition claimed by
    // several members of the same generation is contested: nobody keeps it.
    let mut claims: HashMap<TopicPartition, (i32, Vec<String>)> = HashMap::new();
    for m in members {
        for tp in &m.owned {
            match claims.get_mut(tp) {
                Some((g, _)) if *g > m.generation => {}
                Some((g, who)) if *g == m.generation => who.push(m.member_id.clone()),
                _ => {
                    claims.insert(tp.clone(), (m.generation, vec![m.member_id.clone()]));
                }
            }
        }
    }
    let owner: HashMap<TopicPartition, (String, i32)> = claims
        .iter()
        .filter(|(tp, (_, who))| who.len() == 1 && exists.contains(tp))
        .filter(|(tp, (_, who))| {
            members
                .iter()
                .any(|m| m.member_id == who[0] && m.topics.contains(&tp.topic))
        })
        .map(|(tp, (g, who))| (tp.clone(), (who[0].clone(), *g)))
        .collect();
    let mut out = empty(members);
    for (tp, (member, _)) in &owner {
        if let Some(list) = out.get_mut(member) {
            list.push(tp.clone());
        }
    }
    let subscribed = |member: &str, topic: &str| {
        members
            .iter()
            .find(|m| m.member_id == member)
            .is_some_and(|m| m.topics.iter().any(|t| t == topic))
    };
    // Partitions nobody owns go to the least loaded eligible member.
    for tp in &all {
        if owner.contains_key(tp) {
            continue;
        }
        let target = members
            .iter()
            .filter(|m| m.topics.contains(&tp.topic))
            .min_by_key(|m| (out.get(&m.member_id).map_or(0, Vec::len), m.sort_key()));
        if let Some(m) = target {
            if let Some(list) = out.get_mut(&m.member_id) {
                list.push(tp.clone());
            }
        }
    }
    // Balance: move one partition at a time from the most to a less loaded eligible member
    // until no move narrows the gap. Bounded by the partition count.
    for _ in 0..=all.len() {
        let mut loads: Vec<(usize, &str)> = members
            .iter()
            .map(|m| {
                (
                    out.get(&m.member_id).map_or(0, Vec::len),
                    m.member_id.as_str(),
                )
            })
            .collect();
        loads.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let mut moved = false;
        'search: for &(from_load, from) in &loads {
            for &(to_load, to) in loads.iter().rev() {
                if from_load <= to_load + 1 {
                    break;
                }
                let candidate = out.get(from).and_then(|list| {
                    // Prefer moving a partition the source did not own before.
                    let mut eligible: Vec<&TopicPartition> =
                        list.iter().filter(|tp| subscribed(to, &tp.topic)).collect();
                    eligible.sort_by_key(|tp| {
                        (
                            owner.get(*tp).is_some_and(|(m, _)| m == from),
                            (*tp).clone(),
                        )
                    });
                    eligible.first().map(|tp| (*tp).clone())
                });
                if let Some(tp) = candidate {
                    if let Some(list) = out.get_mut(from) {
                        list.retain(|x| *x != tp);
                    }
                    if let Some(list) = out.get_mut(to) {
                        list.push(tp);
                    }
                    moved = true;
                    break 'search;
                }
            }
        }
        if !moved {
            break;
        }
    }
    // Cooperative step: a partition moving away from its current owner(s) is not handed to
    // the new owner until the old one has revoked it.
    for (member, list) in out.iter_mut() {
        list.retain(|tp| {
            claims
                .get(tp)
                .is_none_or(|(_, who)| who.len() == 1 && &who[0] == member)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(
        id: &str,
        topics: &[&str],
        owned: &[(&str, i32)],
        generation: i32,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id: id.into(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            generation,
        }
    }

    fn tps(list: &[(&str, i32)]) -> Vec<TopicPartition> {
        list.iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect()
    }

    fn counts(parts: &[(&str, i32)]) -> HashMap<String, i32> {
        parts.iter().map(|(t, c)| (t.to_string(), *c)).collect()
    }

    fn check_complete(a: &Assignment, total: usize) {
        let mut seen = BTreeSet::new();
        for list in a.values() {
            for tp in list {
                assert!(seen.insert(tp.clone()), "{tp} assigned twice");
            }
        }
        assert_eq!(seen.len(), total, "every partition assigned once: {a:?}");
    }

    #[test]
    fn range_gives_consecutive_ranges_extra_to_the_first() {
        let members = vec![member("c2", &["t"], &[], -1), member("c1", &["t"], &[], -1)];
        let a = assign(AssignorKind::Range, &members, &counts(&[("t", 5)]));
        assert_eq!(a["c1"], tps(&[("t", 0), ("t", 1), ("t", 2)]));
        assert_eq!(a["c2"], tps(&[("t", 3), ("t", 4)]));
        // Per topic: with two topics of 3 partitions and two members, c1 gets 2+2.
        let members = vec![
            member("c1", &["a", "b"], &[], -1),
            member("c2", &["a", "b"], &[], -1),
        ];
        let a = assign(
            AssignorKind::Range,
            &members,
            &counts(&[("a", 3), ("b", 3)]),
        );
        assert_eq!(a["c1"], tps(&[("a", 0), ("a", 1), ("b", 0), ("b", 1)]));
        assert_eq!(a["c2"], tps(&[("a", 2), ("b", 2)]));
        // A member not subscribed to a topic gets none of it; missing topics are skipped.
        let members = vec![
            member("c1", &["a"], &[], -1),
            member("c2", &["b", "zzz"], &[], -1),
        ];
        let a = assign(
            AssignorKind::Range,
            &members,
            &counts(&[("a", 2), ("b", 1)]),
        );
        assert_eq!(a["c1"], tps(&[("a", 0), ("a", 1)]));
        assert_eq!(a["c2"], tps(&[("b", 0)]));
        // More members than partitions.
        let members: Vec<_> = (0..4)
            .map(|i| member(&format!("m{i}"), &["t"], &[], -1))
            .collect();
        let a = assign(AssignorKind::Range, &members, &counts(&[("t", 2)]));
        assert_eq!(a["m0"].len() + a["m1"].len(), 2);
        assert!(a["m2"].is_empty() && a["m3"].is_empty());
    }

    #[test]
    fn static_members_are_ordered_by_instance_id() {
        let mut a1 = member("zzz", &["t"], &[], -1);
        a1.group_instance_id = Some("instance-a".into());
        let mut b1 = member("aaa", &["t"], &[], -1);
        b1.group_instance_id = Some("instance-b".into());
        let a = assign(AssignorKind::Range, &[b1, a1], &counts(&[("t", 2)]));
        assert_eq!(a["zzz"], tps(&[("t", 0)]));
        assert_eq!(a["aaa"], tps(&[("t", 1)]));
    }

    #[test]
    fn round_robin_deals_across_topics() {
        let members = vec![
            member("c1", &["a", "b"], &[], -1),
            member("c2", &["a", "b"], &[], -1),
        ];
        let a = assign(
            AssignorKind::RoundRobin,
            &members,
            &counts(&[("a", 3), ("b", 3)]),
        );
        assert_eq!(a["c1"], tps(&[("a", 0), ("a", 2), ("b", 1)]));
        assert_eq!(a["c2"], tps(&[("a", 1), ("b", 0), ("b", 2)]));
        // Heterogeneous subscriptions: only subscribed members receive a topic.
        let members = vec![
            member("c0", &["t0"], &[], -1),
            member("c1", &["t0", "t1"], &[], -1),
            member("c2", &["t0", "t1", "t2"], &[], -1),
        ];
        let a = assign(
            AssignorKind::RoundRobin,
            &members,
            &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]),
        );
        check_complete(&a, 6);
        assert_eq!(a["c0"], tps(&[("t0", 0)]));
        assert_eq!(a["c1"], tps(&[("t1", 0)]));
        assert_eq!(a["c2"], tps(&[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)]));
    }

    #[test]
    fn cooperative_sticky_balances_a_fresh_group() {
        let members = vec![member("c1", &["t"], &[], -1), member("c2", &["t"], &[], -1)];
        let a = assign(
            AssignorKind::CooperativeSticky,
            &members,
            &counts(&[("t", 6)]),
        );
        check_complete(&a, 6);
        assert_eq!(a["c1"].len(), 3);
        assert_eq!(a["c2"].len(), 3);
    }

    #[test]
    fn cooperative_sticky_keeps_owned_and_revokes_in_two_phases() {
        // Generation 1: c1 and c2 own three partitions each. c3 joins.
        let c1_owned = [("t", 0), ("t", 2), ("t", 4)];
        let c2_owned = [("t", 1), ("t", 3), ("t", 5)];
        let members = vec![
            member("c1", &["t"], &c1_owned, 1),
            member("c2", &["t"], &c2_owned, 1),
            member("c3", &["t"], &[], -1),
        ];
        let first = assign(
            AssignorKind::CooperativeSticky,
            &members,
            &counts(&[("t", 6)]),
        );
        // Phase one: nothing moves to c3 yet; c1 and c2 each give one partition up.
        assert!(first["c3"].is_empty(), "{first:?}");
        assert_eq!(first["c1"].len(), 2);
        assert_eq!(first["c2"].len(), 2);
        for tp in &first["c1"] {
            assert!(tps(&c1_owned).contains(tp), "c1 keeps only what it owned");
        }
        for tp in &first["c2"] {
            assert!(tps(&c2_owned).contains(tp), "c2 keeps only what it owned");
        }
        // Phase two: after revoking, members rejoin owning what they kept.
        let members = vec![
            MemberSubscription {
                owned: first["c1"].clone(),
                generation: 2,
                ..member("c1", &["t"], &[], 2)
            },
            MemberSubscription {
                owned: first["c2"].clone(),
                generation: 2,
                ..member("c2", &["t"], &[], 2)
            },
            member("c3", &["t"], &[], -1),
        ];
        let second = assign(
            AssignorKind::CooperativeSticky,
            &members,
            &counts(&[("t", 6)]),
        );
        check_complete(&second, 6);
        assert_eq!(second["c1"], first["c1"], "sticky");
        assert_eq!(second["c2"], first["c2"], "sticky");
        assert_eq!(second["c3"].len(), 2);
    }

    #[test]
    fn cooperative_sticky_reassigns_a_departed_members_partitions_at_once() {
        let members = vec![
            member("c1", &["t"], &[("t", 0), ("t", 1)], 3),
            member("c2", &["t"], &[("t", 2), ("t", 3)], 3),
        ];
        // c3 (which owned 4 and 5) left: its partitions are free and move in one phase.
        let a = assign(
            AssignorKind::CooperativeSticky,
            &members,
            &counts(&[("t", 6)]),
        );
        check_complete(&a, 6);
        assert_eq!(a["c1"].len(), 3);
        assert_eq!(a["c2"].len(), 3);
        assert!(a["c1"].contains(&TopicPartition::new("t", 0)));
        assert!(a["c2"].contains(&TopicPartition::new("t", 3)));
    }

    #[test]
    fn cooperative_sticky_drops_stale_and_contested_claims() {
        // c2 claims t-0 from an older generation; c1's newer claim wins.
        let members = vec![
            member("c1", &["t"], &[("t", 0)], 5),
            member("c2", &["t"], &[("t", 0), ("t", 1)], 4),
        ];
        let a = assign(
            AssignorKind::CooperativeSticky,
            &members,
            &counts(&[("t", 2)]),
        );
        assert_eq!(a["c1"], tps(&[("t", 0)]));
        assert_eq!(a["c2"], tps(&[("t", 1)]));
        // Owned partitions of topics no longer subscribed (or gone) are not kept.
        let members = vec![member("c1", &["t"], &[("old", 0), ("t", 9)], 1)];
        let a = assign(
            AssignorKind::CooperativeSticky,
            &members,
            &counts(&[("t", 1)]),
        );
        assert_eq!(a["c1"], tps(&[("t", 0)]));
    }

    #[test]
    fn cooperative_sticky_respects_subscriptions() {
        let members = vec![
            member("c1", &["a"], &[], -1),
            member("c2", &["a", "b"], &[], -1),
        ];
        let a = assign(
            AssignorKind::CooperativeSticky,
            &members,
            &counts(&[("a", 2), ("b", 2)]),
        );
        check_complete(&a, 4);
        assert!(a["c1"].iter().all(|tp| tp.topic == "a"));
        assert_eq!(
            a["c1"].len(),
            2,
            "c1 takes both of a so c2 can take b: {a:?}"
        );
    }
}
