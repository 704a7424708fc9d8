//! Engines wired together in memory: a harness carries every `Send` to its
//! destination (in order), reports it written back to the sender, applies
//! `Install`/`Remove` to a per-member map-cache, and can cut or stall links.

use std::collections::BTreeMap;

use lisp_msx_proto::lisp::Locator;

use super::*;

const SUB: u16 = sync::DEFAULT_SUBTYPE;
const KEY: &str = "site key";

fn ip(i: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, i])
}

fn rec(i: u32, rloc: u8) -> EidRecord {
    EidRecord::new(
        EidPrefix::new(Addr::V4(0x0A00_0000 | (i << 8)), 24),
        10,
        vec![Locator::new(
            Addr::V4(0xC633_6400 | u32::from(rloc)),
            1,
            100,
        )],
    )
}

fn key(i: u32) -> SyncKey {
    SyncKey::new(0, rec(i, 0).eid)
}

fn cfg(mode: Mode, me: u8, members: &[u8]) -> SyncConfig {
    let mut c = SyncConfig::new(7, KEY);
    c.mode = mode;
    c.listen = Some(ip(me));
    c.peers = members
        .iter()
        .filter(|m| **m != me)
        .map(|m| ip(*m))
        .collect();
    c.validate().unwrap();
    c
}

struct Node {
    e: SyncEngine,
    /// The reactor's map-cache as the engine drives it: key → (record, expiry).
    cache: BTreeMap<SyncKey, (EidRecord, u64)>,
    ready: bool,
    solicits: Vec<(IpAddr, MapSolicit)>,
    closed: Vec<IpAddr>,
}

struct Net {
    t: Time,
    nodes: BTreeMap<IpAddr, Node>,
    wire: VecDeque<(IpAddr, IpAddr, Arc<[u8]>)>,
    /// Directed links losing everything silently.
    cut: HashSet<(IpAddr, IpAddr)>,
    /// Directed links holding their frames (neither delivered nor written).
    stalled: HashSet<(IpAddr, IpAddr)>,
    held: VecDeque<(IpAddr, IpAddr, Arc<[u8]>)>,
    /// Every message delivered: (from, to, message).
    log: Vec<(IpAddr, IpAddr, MapSync)>,
}

impl Net {
    fn new(mode: Mode, members: &[u8], tweak: impl Fn(&mut SyncConfig)) -> Net {
        let t = Time::now();
        let mut net = Net {
            t,
            nodes: BTreeMap::new(),
            wire: VecDeque::new(),
            cut: HashSet::new(),
            stalled: HashSet::new(),
            held: VecDeque::new(),
            log: Vec::new(),
        };
        for (i, m) in members.iter().enumerate() {
            let mut c = cfg(mode, *m, members);
            tweak(&mut c);
            net.add(*m, SyncEngine::new(c, 100 + i as u32, SUB, t));
        }
        for a in members {
            for b in members {
                if a < b {
                    net.connect(*a, *b);
                }
            }
        }
        net.run();
        net
    }

    fn add(&mut self, m: u8, e: SyncEngine) {
        self.nodes.insert(
            ip(m),
            Node {
                e,
                cache: BTreeMap::new(),
                ready: false,
                solicits: Vec::new(),
                closed: Vec::new(),
            },
        );
    }

    fn connect(&mut self, a: u8, b: u8) {
        let t = self.t;
        self.e(a).on_event(SyncEvent::Connected { peer: ip(b) }, t);
        self.e(b).on_event(SyncEvent::Connected { peer: ip(a) }, t);
    }

    fn disconnect(&mut self, a: u8, b: u8) {
        let t = self.t;
        self.e(a).on_event(SyncEvent::Lost { peer: ip(b) }, t);
        self.e(b).on_event(SyncEvent::Lost { peer: ip(a) }, t);
        self.wire
            .retain(|(f, d, _)| !((*f, *d) == (ip(a), ip(b)) || (*f, *d) == (ip(b), ip(a))));
    }

    fn e(&mut self, m: u8) -> &mut SyncEngine {
        &mut self.nodes.get_mut(&ip(m)).unwrap().e
    }

    fn node(&self, m: u8) -> &Node {
        &self.nodes[&ip(m)]
    }

    fn collect(&mut self) {
        for (me, n) in &mut self.nodes {
            for a in n.e.drain_actions() {
                match a {
                    Action::Send { peer, msg } => self.wire.push_back((*me, peer, msg)),
                    Action::Install {
                        key,
                        rec,
                        expiry_unix_ms,
                    } => {
                        n.cache.insert(key, (rec, expiry_unix_ms));
                    }
                    Action::Remove { key } => {
                        n.cache.remove(&key);
                    }
                    Action::SendSolicit { to, msg } => n.solicits.push((to, msg)),
                    Action::Connect { .. } => {}
                    Action::Close { peer } => n.closed.push(peer),
                    Action::Ready => n.ready = true,
                }
            }
        }
    }

    /// Delivers until nothing moves (bounded).
    fn run(&mut self) {
        for _ in 0..2_000_000 {
            self.collect();
            let Some((from, to, msg)) = self.wire.pop_front() else {
                return;
            };
            if self.stalled.contains(&(from, to)) {
                self.held.push_back((from, to, msg));
                continue;
            }
            self.deliver(from, to, msg);
        }
        panic!("the set did not settle");
    }

    fn deliver(&mut self, from: IpAddr, to: IpAddr, msg: Arc<[u8]>) {
        let t = self.t;
        let bytes = (msg.len() + sync::frame_overhead(true)) as u64;
        if !self.cut.contains(&(from, to)) {
            self.log.push((
                from,
                to,
                MapSync::decode(&msg, SUB).expect("engines send valid messages"),
            ));
            let n = self.nodes.get_mut(&to).unwrap();
            n.e.on_event(
                SyncEvent::Frame {
                    peer: from,
                    msg: msg.to_vec(),
                },
                t,
            );
        }
        let n = self.nodes.get_mut(&from).unwrap();
        n.e.on_event(SyncEvent::Written { peer: to, bytes }, t);
    }

    fn release(&mut self) {
        self.stalled.clear();
        while let Some((f, d, m)) = self.held.pop_front() {
            self.deliver(f, d, m);
            self.collect();
        }
        self.run();
    }

    /// Moves both clocks and ticks everyone, in steps of at most 10 ms.
    fn advance(&mut self, ms: u64) {
        let mut left = ms;
        while left > 0 {
            let step = left.min(10);
            left -= step;
            self.t = self.t.plus_ms(step);
            let t = self.t;
            for n in self.nodes.values_mut() {
                n.e.tick(t);
            }
            self.run();
        }
    }

    fn upsert(&mut self, m: u8, r: EidRecord, expiry: u64, map_reply: bool) {
        let t = self.t;
        self.e(m).local_upsert(r, 0, expiry, map_reply, t);
    }

    fn count(&self, pred: impl Fn(&(IpAddr, IpAddr, MapSync)) -> bool) -> usize {
        self.log.iter().filter(|x| pred(x)).count()
    }

    /// Every member's engine table and map-cache hold exactly `keys`, with
    /// the same record and expiry everywhere.
    fn assert_converged(&self, keys: &[SyncKey]) {
        let first = self.nodes.values().next().unwrap();
        for (ip, n) in &self.nodes {
            assert_eq!(n.e.record_count(), keys.len(), "{ip}: table size");
            for k in keys {
                let (r, x) = n.e.get(k).unwrap_or_else(|| panic!("{ip} lacks {k}"));
                let (r0, x0) = first.e.get(k).unwrap();
                assert_eq!((r, x), (r0, x0), "{ip}: {k} differs");
            }
        }
    }
}

fn far(t: Time) -> u64 {
    t.unix_ms + 600_000
}

#[test]
fn members_start_ready_when_every_peer_is_empty() {
    let net = Net::new(Mode::Smart, &[1, 2, 3], |_| {});
    for n in net.nodes.values() {
        assert!(n.ready && n.e.is_ready());
        assert!(n.e.members().iter().all(|m| m.state == MemberState::Synced));
        // Solicited every configured peer at start.
        assert_eq!(n.solicits.len(), 2);
    }
}

#[test]
fn naive_full_transfer_replaces_all_and_resets_ttls() {
    let mut net = Net::new(Mode::Naive, &[1, 2, 3], |_| {});
    let t0 = net.t;
    // Member 2 holds records of its own; member 1 learns others.
    let log0 = net.log.len();
    for i in 0..3 {
        net.upsert(2, rec(i, 2), far(t0), false);
    }
    for i in 10..13 {
        // Short expiry at the sender: receivers restart the 10-minute TTL.
        net.upsert(1, rec(i, 1), t0.unix_ms + 5_000, false);
    }
    net.run();
    assert_eq!(net.log.len(), log0, "no Map-Reply yet: nothing sent");
    net.advance(1_000);
    net.upsert(1, rec(13, 1), t0.unix_ms + 5_000, true);
    net.run();
    let want: Vec<SyncKey> = (10..14).map(key).collect();
    let t = net.t;
    for m in [2, 3] {
        let n = net.node(m);
        assert_eq!(
            n.cache.keys().copied().collect::<Vec<_>>(),
            want,
            "member {m}"
        );
        for (k, (_, x)) in &n.cache {
            assert_eq!(*x, t.unix_ms + 10 * 60_000, "{k}: TTL restarted at receipt");
        }
        // Member 2's own records were replaced away.
        assert!(n.e.get(&key(0)).is_none());
    }
    // Every Map-Reply triggers a whole transfer.
    let fulls = |net: &Net| {
        net.count(|(f, _, m)| *f == ip(1) && matches!(m, MapSync::Full(p) if p.replace && !p.more))
    };
    assert_eq!(fulls(&net), 2);
    net.upsert(1, rec(13, 1), t0.unix_ms + 5_000, true);
    net.run();
    assert_eq!(
        fulls(&net),
        4,
        "an unchanged Map-Reply still sends everything"
    );
}

#[test]
fn naive_transfer_interrupted_by_a_lost_page_changes_nothing() {
    let mut net = Net::new(Mode::Naive, &[1, 2], |_| {});
    let t0 = net.t;
    // Enough records for several pages.
    for i in 0..3000 {
        net.upsert(1, rec(i, 1), far(t0), false);
    }
    net.upsert(2, rec(9999, 2), far(t0), false);
    net.cut.insert((ip(1), ip(2)));
    net.upsert(1, rec(1, 1), far(t0), true);
    net.collect();
    // Let the first page through, lose the rest: member 2 keeps its table.
    let first = net.wire.pop_front().unwrap();
    net.cut.clear();
    net.deliver(first.0, first.1, first.2);
    net.cut.insert((ip(1), ip(2)));
    net.run();
    assert!(net.node(2).e.get(&key(9999)).is_some());
    assert_eq!(net.node(2).e.record_count(), 1);
    net.cut.clear();
    net.upsert(1, rec(2, 1), far(t0), true);
    net.run();
    assert_eq!(net.node(2).e.record_count(), 3000);
    assert!(net.node(2).e.stats().staging_aborted >= 1);
}

#[test]
fn smart_sends_only_changes() {
    let mut net = Net::new(Mode::Smart, &[1, 2, 3], |_| {});
    let t0 = net.t;
    for i in 0..200 {
        net.upsert(1, rec(i, 1), far(t0), true);
    }
    net.advance(20);
    let keys: Vec<SyncKey> = (0..200).map(key).collect();
    net.assert_converged(&keys);
    assert_eq!(net.node(2).cache.len(), 200);
    let received = |net: &Net, m: u8| -> u64 {
        net.node(m)
            .e
            .members()
            .iter()
            .find(|s| s.peer == ip(1))
            .unwrap()
            .counters
            .records_received
    };
    let before = received(&net, 2);
    let log = net.log.len();
    // One record changes: exactly one record goes to each member, in a Delta.
    net.upsert(1, rec(5, 9), far(t0), true);
    net.advance(20);
    assert_eq!(received(&net, 2) - before, 1);
    assert!(
        net.log[log..]
            .iter()
            .all(|(_, _, m)| matches!(m, MapSync::Delta(c) if c.upserts.len() == 1))
    );
    assert_eq!(net.log.len() - log, 2);
    assert_eq!(
        net.node(3).cache[&key(5)].0.locators[0].addr,
        Addr::V4(0xC633_6409)
    );
    // The same record again: nothing at all.
    let log = net.log.len();
    net.upsert(1, rec(5, 9), far(t0), true);
    net.advance(20);
    assert_eq!(net.log.len(), log);
    assert_eq!(net.e(1).stats().local_unchanged, 1);
    // Batching: 100 changes in one 10 ms window make one Delta per member.
    let log = net.log.len();
    for i in 0..100 {
        net.upsert(1, rec(i, 7), far(t0), true);
    }
    net.advance(10);
    assert_eq!(net.log.len() - log, 2);
}

#[test]
fn expiry_unused_is_local_and_used_is_refreshed_with_one_expiry_everywhere() {
    let mut net = Net::new(Mode::Smart, &[1, 2, 3], |_| {});
    let t0 = net.t;
    let expiry = t0.unix_ms + 60_000;
    net.upsert(1, rec(1, 1), expiry, true);
    net.upsert(1, rec(2, 1), expiry, true);
    net.advance(20);
    for m in [2, 3] {
        assert_eq!(
            net.node(m).cache[&key(1)].1,
            expiry,
            "absolute expiry shared"
        );
    }
    net.advance(60_000 - 20);
    let t = net.t;
    let log = net.log.len();
    // Record 1: nobody used it. Every member drops it, nobody tells anyone.
    for m in [1, 2, 3] {
        assert_eq!(net.e(m).on_expiry(key(1), false, t), ExpiryDecision::Remove);
        assert!(net.e(m).get(&key(1)).is_none());
    }
    // Record 2: member 2 forwarded with it, the others did not.
    assert_eq!(net.e(1).on_expiry(key(2), false, t), ExpiryDecision::Remove);
    assert_eq!(net.e(3).on_expiry(key(2), false, t), ExpiryDecision::Remove);
    assert_eq!(net.e(2).on_expiry(key(2), true, t), ExpiryDecision::Refresh);
    net.advance(20);
    assert_eq!(net.log.len(), log, "expiry sends nothing");
    // Member 2's Map-Request comes back: the refresh reaches everyone with
    // member 2's absolute expiry.
    let refreshed = t.unix_ms + 600_000;
    net.upsert(2, rec(2, 5), refreshed, false);
    net.advance(20);
    for m in [1, 3] {
        assert_eq!(net.node(m).cache[&key(2)], (rec(2, 5), refreshed));
    }
    net.assert_converged(&[key(2)]);
    // Digests agree afterwards: no repair traffic.
    let log = net.log.len();
    net.advance(11_000);
    assert!(
        net.log[log..]
            .iter()
            .any(|(_, _, m)| matches!(m, MapSync::Digest(_)))
    );
    assert!(
        net.nodes
            .values()
            .all(|n| n.e.stats().digest_mismatches == 0)
    );
}

#[test]
fn digest_repair_converges_a_member_that_missed_deltas() {
    let mut net = Net::new(Mode::Smart, &[1, 2, 3], |_| {});
    let t0 = net.t;
    for i in 0..2000 {
        net.upsert(1, rec(i, 1), far(t0), true);
    }
    net.advance(20);
    // Member 3 misses what member 1 says for a while.
    net.cut.insert((ip(1), ip(3)));
    for i in 0..10 {
        net.upsert(1, rec(i * 100, 8), far(t0), true);
    }
    let t = net.t;
    net.e(1).local_remove(key(1999), t);
    net.advance(20);
    net.cut.clear();
    assert_eq!(net.node(3).cache[&key(0)].0, rec(0, 1), "missed");
    let log = net.log.len();
    // Digests start within two intervals (staggered by member).
    net.advance(11_000);
    let mut keys: Vec<SyncKey> = (0..1999).map(key).collect();
    keys.sort();
    net.assert_converged(&keys);
    assert_eq!(net.node(3).cache[&key(0)].0, rec(0, 8));
    assert!(!net.node(3).cache.contains_key(&key(1999)));
    // Only the differing buckets travelled, no whole table.
    let requested: usize = net.log[log..]
        .iter()
        .filter_map(|(_, _, m)| match m {
            MapSync::DigestRequest(b) => Some(b.len()),
            _ => None,
        })
        .sum();
    // Each of the four exchanges involving member 3 differs in at most the
    // 11 buckets of the changes.
    assert!(
        (1..=44).contains(&requested),
        "{requested} buckets requested"
    );
    assert_eq!(net.count(|(_, _, m)| matches!(m, MapSync::Full(_))), 0);
    let repaired: usize = net.log[log..]
        .iter()
        .filter_map(|(_, _, m)| match m {
            MapSync::DigestReply { changes, .. } => {
                Some(changes.upserts.len() + changes.withdrawals.len())
            }
            _ => None,
        })
        .sum();
    assert!(repaired < 2000 / 4, "{repaired} records sent to repair");
    assert!(
        net.node(3)
            .e
            .members()
            .iter()
            .all(|m| m.state == MemberState::Synced)
    );
}

#[test]
fn concurrent_writes_of_one_key_converge() {
    let mut net = Net::new(Mode::Smart, &[1, 2, 3], |_| {});
    let t0 = net.t;
    net.upsert(1, rec(1, 1), far(t0), true);
    net.upsert(2, rec(1, 2), far(t0), true);
    net.upsert(3, rec(1, 3), far(t0), true);
    net.advance(20);
    net.assert_converged(&[key(1)]);
    // Highest origin wins a tie on version.
    let n = net.node(1);
    assert_eq!(n.e.get(&key(1)).unwrap().0, &rec(1, 3));
    assert_eq!(n.cache[&key(1)].0, rec(1, 3));
}

#[test]
fn back_pressure_bounds_the_queue_and_repairs_after_drain() {
    let bound = crate::sync::MIN_PEER_QUEUE_BYTES;
    let mut net = Net::new(Mode::Smart, &[1, 2], |c| c.peer_queue_bytes = bound);
    let t0 = net.t;
    net.stalled.insert((ip(1), ip(2)));
    for i in 0..8000 {
        net.upsert(1, rec(i, 1), far(t0), true);
        if i % 500 == 0 {
            net.advance(10);
        }
    }
    net.advance(10);
    let held: usize = net
        .held
        .iter()
        .map(|(_, _, m)| m.len() + sync::frame_overhead(true))
        .sum();
    assert!(held <= bound, "{held} bytes queued for a bound of {bound}");
    assert!(held > bound / 2);
    let m = net.e(1).members();
    assert_eq!(m[0].state, MemberState::Repairing);
    assert!(m[0].counters.overflows >= 1);
    // Stalled: even digests wait.
    let queued = net.held.len();
    net.advance(11_000);
    assert_eq!(net.held.len(), queued);
    // The peer drains: a digest exchange brings it the rest.
    net.release();
    net.advance(2_000);
    let keys: Vec<SyncKey> = (0..8000).map(key).collect();
    net.assert_converged(&keys);
    assert_eq!(net.node(2).cache.len(), 8000);
    assert_eq!(net.e(1).members()[0].state, MemberState::Synced);
    // Member 2 answered with its digest after repairing: nothing came back.
    assert_eq!(net.e(1).members()[0].counters.records_received, 0);
}

#[test]
fn a_restarted_member_pulls_before_it_is_ready() {
    let mut net = Net::new(Mode::Smart, &[1, 2, 3], |_| {});
    let t0 = net.t;
    for i in 0..3000 {
        net.upsert(1 + (i % 2) as u8, rec(i, 1), far(t0), true);
    }
    net.advance(20);
    // Member 3 is killed (SIGKILL: no goodbye) and comes back empty.
    net.disconnect(1, 3);
    net.disconnect(2, 3);
    net.advance(1_000);
    let c = cfg(Mode::Smart, 3, &[1, 2, 3]);
    let t = net.t;
    net.add(3, SyncEngine::new(c, 102, SUB, t));
    net.collect();
    assert!(!net.node(3).ready);
    assert_eq!(net.node(3).solicits.len(), 2);
    net.connect(1, 3);
    net.connect(2, 3);
    net.run();
    assert!(net.node(3).ready, "ready once the pull is complete");
    let keys: Vec<SyncKey> = (0..3000).map(key).collect();
    net.assert_converged(&keys);
    assert_eq!(net.node(3).cache.len(), 3000);
    // One whole table, from one member.
    assert_eq!(
        net.count(|(_, _, m)| matches!(m, MapSync::BulkPull { .. })),
        1
    );
    assert_eq!(net.e(3).stats().pull_timeouts, 0);
    // In sync: the digests it gets match.
    let log = net.log.len();
    net.advance(11_000);
    assert!(
        net.log[log..]
            .iter()
            .any(|(_, to, m)| *to == ip(3) && matches!(m, MapSync::Digest(_)))
    );
    assert_eq!(net.e(3).stats().digest_mismatches, 0);
}

#[test]
fn a_restarted_naive_member_pulls_the_whole_table_too() {
    let mut net = Net::new(Mode::Naive, &[1, 2], |_| {});
    let t0 = net.t;
    for i in 0..1000 {
        net.upsert(1, rec(i, 1), far(t0), false);
    }
    net.disconnect(1, 2);
    let t = net.t;
    net.add(
        2,
        SyncEngine::new(cfg(Mode::Naive, 2, &[1, 2]), 101, SUB, t),
    );
    net.connect(1, 2);
    net.run();
    assert!(net.node(2).ready);
    assert_eq!(net.node(2).cache.len(), 1000);
}

#[test]
fn ready_after_pull_timeout_when_no_peer_answers() {
    let t = Time::now();
    let mut e = SyncEngine::new(cfg(Mode::Smart, 1, &[1, 2, 3]), 1, SUB, t);
    let a = e.drain_actions();
    assert!(!a.contains(&Action::Ready));
    assert!(a.contains(&Action::Connect { peer: ip(2) }));
    assert_eq!(e.next_wakeup(), t.now + Duration::from_millis(2000));
    e.tick(t.plus_ms(1999));
    assert!(!e.is_ready());
    assert!(!e.drain_actions().contains(&Action::Ready));
    e.tick(t.plus_ms(2000));
    assert!(e.is_ready());
    assert_eq!(e.drain_actions(), vec![Action::Ready]);
    assert_eq!(e.stats().pull_timeouts, 1);
}

#[test]
fn malformed_and_unauthenticated_input_is_counted_and_dropped() {
    let mut net = Net::new(Mode::Smart, &[1, 2], |_| {});
    let t = net.t;
    let e = net.e(1);
    let from_2 = |msg: Vec<u8>| SyncEvent::Frame { peer: ip(2), msg };
    e.on_event(from_2(vec![0xF4, 0x03, 2, 0, 0, 1]), t);
    e.on_event(from_2(b"garbage".to_vec()), t);
    let other_subtype = MapSync::BulkPull { transfer_id: 1 }.to_bytes(1026).unwrap();
    e.on_event(from_2(other_subtype), t);
    e.on_event(
        SyncEvent::Refused {
            peer: ip(2),
            reason: Refusal::Auth,
        },
        t,
    );
    let m = &e.members()[0];
    assert_eq!((m.counters.malformed, m.counters.auth_failures), (3, 1));
    assert_eq!((e.stats().malformed, e.stats().auth_failures), (3, 1));
    assert!(
        e.drain_actions().is_empty(),
        "nothing installed, nothing sent"
    );
    // A stranger's message before any hello.
    let delta = MapSync::Delta(SyncChanges {
        upserts: vec![SyncUpsert {
            iid: 0,
            origin: 9,
            version: 1,
            expiry_unix_ms: far(t),
            record: rec(1, 1),
        }],
        withdrawals: vec![],
    })
    .to_bytes(SUB)
    .unwrap();
    e.on_event(
        SyncEvent::Frame {
            peer: ip(9),
            msg: delta.clone(),
        },
        t,
    );
    e.on_event(SyncEvent::Connected { peer: ip(9) }, t);
    e.drain_actions();
    e.on_event(
        SyncEvent::Frame {
            peer: ip(9),
            msg: delta,
        },
        t,
    );
    assert_eq!(e.stats().unexpected, 2);
    assert!(e.get(&key(1)).is_none());
    // A member of another set is refused and disconnected.
    let hello = MapSync::Hello(SyncHello {
        member_id: 9,
        set_id: 8,
        mode: Mode::Smart.wire(),
        epoch: 1,
        unix_ms: t.unix_ms,
        record_count: 0,
    })
    .to_bytes(SUB)
    .unwrap();
    e.on_event(
        SyncEvent::Frame {
            peer: ip(9),
            msg: hello,
        },
        t,
    );
    assert_eq!(e.stats().refused, 1);
    assert_eq!(e.drain_actions(), vec![Action::Close { peer: ip(9) }]);
}

#[test]
fn solicits_are_authenticated_answered_and_discover_members() {
    let t = Time::now();
    let mut c = cfg(Mode::Smart, 1, &[1, 2]);
    c.solicit_group = Some("224.0.0.240".parse().unwrap());
    let mut e = SyncEngine::new(c, 1, SUB, t);
    let start = e.drain_actions();
    let group = start
        .iter()
        .find_map(|a| match a {
            Action::SendSolicit { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(group.0, "224.0.0.240".parse::<IpAddr>().unwrap());
    assert!(!group.1.response && group.1.sync_set == 7);
    // A newcomer's request, signed with the set's key.
    let mut req = group.1.clone();
    req.itr_id = 5;
    let signed = crate::sync::encode_solicit(&req, 1026, KEY).unwrap();
    let decoded = match lisp_msx_proto::LispMessage::decode(&signed).unwrap() {
        lisp_msx_proto::LispMessage::Extension(lisp_msx_proto::msx::ExtMessage::Solicit(m)) => m,
        other => panic!("{other:?}"),
    };
    e.on_solicit(ip(5), &decoded, &signed, t);
    let a = e.drain_actions();
    assert!(a.contains(&Action::Connect { peer: ip(5) }));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::SendSolicit { to, msg } if *to == ip(5) && msg.response))
    );
    // The same with a wrong key: counted, ignored.
    let forged = crate::sync::encode_solicit(&req, 1026, "not the key").unwrap();
    e.on_solicit(ip(6), &decoded, &forged, t);
    assert!(e.drain_actions().is_empty());
    assert_eq!(e.stats().auth_failures, 1);
    assert_eq!(e.members().len(), 2);
}

/// The digest by brute force: every live record not expiring near `cutoff`.
fn brute_digest(e: &SyncEngine, cutoff: u64) -> Vec<u64> {
    let mut d = vec![0u64; BUCKETS];
    for ((b, _), slot) in &e.table {
        if let Some((h, x)) = slot.live()
            && x > cutoff + HORIZON_MS
        {
            d[usize::from(*b)] ^= h;
        }
    }
    d
}

fn digest(net: &Net, m: u8, cutoff: u64) -> SyncDigest {
    let e = &net.node(m).e;
    e.index.digest(&e.table, cutoff, false)
}

#[test]
fn a_digest_as_of_a_cutoff_ignores_later_changes() {
    let mut net = Net::new(Mode::Smart, &[1, 2], |_| {});
    let t0 = net.t;
    for i in 0..500 {
        net.upsert(1, rec(i, 1), far(t0), true);
    }
    // Expires right after the cutoff: left out by both.
    net.upsert(1, rec(600, 1), t0.unix_ms + 1_500, true);
    net.advance(20);
    let cutoff = net.t.unix_ms;
    assert_eq!(
        digest(&net, 1, cutoff).buckets,
        brute_digest(&net.node(1).e, cutoff)
    );
    net.advance(10);
    // Member 1 goes on alone: a key changed twice, a new key, a withdrawal.
    net.cut.insert((ip(1), ip(2)));
    net.upsert(1, rec(1, 2), far(t0), true);
    net.advance(10);
    net.upsert(1, rec(1, 3), far(t0), true);
    net.upsert(1, rec(900, 1), far(t0), true);
    let t = net.t;
    net.e(1).local_remove(key(2), t);
    net.advance(20);
    let (a, b) = (digest(&net, 1, cutoff), digest(&net, 2, cutoff));
    assert_eq!(a.buckets, b.buckets);
    assert_eq!((a.record_count, b.record_count), (500, 500));
    assert!(a.unsettled.iter().all(|x| *x == 0));
    // As of now they differ; the next exchanges repair member 2.
    let now = net.t.unix_ms;
    assert_ne!(digest(&net, 1, now).buckets, digest(&net, 2, now).buckets);
    net.cut.clear();
    net.advance(11_000);
    let now = net.t.unix_ms - SETTLE_MS;
    assert_eq!(digest(&net, 1, now).buckets, digest(&net, 2, now).buckets);
    assert_eq!(
        digest(&net, 2, now).buckets,
        brute_digest(&net.node(2).e, now)
    );
    assert_eq!(net.node(2).cache[&key(1)].0, rec(1, 3));
    // Older than the change log reaches (30 s): nothing is compared.
    net.advance(31_000);
    net.upsert(1, rec(7, 7), far(t0), true);
    let old = digest(&net, 1, cutoff);
    assert!(old.unsettled.iter().all(|x| *x == 0xFF));
    assert!(
        digest(&net, 1, net.t.unix_ms)
            .unsettled
            .iter()
            .all(|x| *x == 0)
    );
}
