//! Counters and latency histograms. Atomics, so the reactor counts without
//! locks and the metrics endpoint and `show lisp statistics` read at any time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($field:ident => $name:literal, $help:literal;)*) => {
        /// Every counter the agent keeps. Names are stable: they appear in
        /// `show lisp statistics`, its JSON, and (dots as underscores) in /metrics.
        #[derive(Default, Debug)]
        pub struct Counters {
            $(pub $field: AtomicU64,)*
        }

        impl Counters {
            /// (name, help, value) of every counter.
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$(($name, $help, self.$field.load(Relaxed)),)*]
            }
        }
    };
}

counters! {
    packets_rx => "packets.rx", "control packets received";
    packets_tx => "packets.tx", "control packets sent";
    map_request_rx => "map-request.rx", "Map-Requests received";
    map_request_tx => "map-request.tx", "Map-Requests sent";
    map_request_rate_limited => "map-request.rate-limited", "Map-Requests dropped by the per-source rate limit";
    map_reply_rx => "map-reply.rx", "Map-Replies received";
    map_reply_tx => "map-reply.tx", "Map-Replies sent";
    negative_reply_tx => "map-reply.negative.tx", "negative Map-Replies sent";
    map_reply_unmatched => "map-reply.unmatched", "Map-Replies matching no pending request (dropped)";
    map_register_rx => "map-register.rx", "Map-Registers received";
    map_register_tx => "map-register.tx", "Map-Registers sent";
    map_register_accepted => "map-register.accepted", "Map-Registers accepted";
    map_register_rejected => "map-register.rejected", "Map-Registers refused (prefix not allowed, algorithm not accepted)";
    map_notify_rx => "map-notify.rx", "Map-Notifies received";
    map_notify_tx => "map-notify.tx", "Map-Notifies sent";
    map_notify_ack_rx => "map-notify-ack.rx", "Map-Notify-Acks received";
    map_referral_rx => "map-referral.rx", "Map-Referrals received";
    map_referral_tx => "map-referral.tx", "Map-Referrals sent";
    ecm_rx => "ecm.rx", "Encapsulated Control Messages received";
    ecm_forwarded => "ecm.forwarded", "ECMs forwarded (Map-Resolver to Map-Server, Map-Server to ETR)";
    extension_rx => "extension.rx", "Shared Extension messages received";
    auth_failures => "auth.failure", "messages refused for bad authentication";
    replayed_nonces => "auth.replayed-nonce", "Map-Registers refused for a nonce not greater than the last one";
    malformed => "malformed", "malformed packets dropped";
    unknown_type => "malformed.unknown-type", "packets of an unknown or unsupported type dropped";
    cache_hits => "map-cache.hit", "map-cache lookups that found an entry";
    cache_misses => "map-cache.miss", "map-cache lookups that missed";
    cache_expired => "map-cache.expired", "map-cache entries removed at TTL expiry";
    smr_rx => "smr.rx", "Solicit-Map-Requests received";
    smr_invoked_tx => "smr-invoked.tx", "SMR-invoked Map-Requests sent";
    probe_rx => "rloc-probe.rx", "RLOC-probe Map-Requests received";
    probe_reply_rx => "rloc-probe.reply.rx", "RLOC-probe replies received";
    resolution_timeouts => "resolution.timeout", "resolutions that got no answer in time";
    registrations_expired => "registration.expired", "registrations removed at expiry";
    send_errors => "socket.send-error", "sends the kernel refused";
    cpnp_rx => "cpnp.rx", "CPNP messages received";
    cpnp_tx => "cpnp.tx", "CPNP messages sent";
    cpnp_refused => "cpnp.refused", "CPNP connections closed for bad authentication or malformed frames";
    msx_subscribe_rx => "msx.subscribe.rx", "Map-Subscribes answered (as a provider)";
    msx_subscribe_ack_rx => "msx.subscribe-ack.rx", "Map-Subscribe-Acks accepted (as a subscriber)";
    msx_publication_rx => "msx.publication.rx", "subscription publications received and acknowledged";
    msx_unmatched => "msx.unmatched", "subscription messages matching no subscription (dropped)";
    dp_encapsulated => "data-plane.encapsulated", "packets encapsulated (ITR)";
    dp_encapsulated_bytes => "data-plane.encapsulated-bytes", "inner bytes encapsulated (ITR)";
    dp_decapsulated => "data-plane.decapsulated", "packets decapsulated and delivered (ETR, PETR)";
    dp_decapsulated_bytes => "data-plane.decapsulated-bytes", "inner bytes decapsulated (ETR, PETR)";
    dp_miss => "data-plane.miss", "packets whose destination missed the map-cache";
    dp_assisted => "data-plane.assisted", "missed packets handed to a mapping-system assist Map-Server";
    dp_assist_forwarded => "data-plane.assist-forwarded", "packets forwarded to the registered ETR (assist service)";
    dp_queued => "data-plane.queued", "missed packets queued until their mapping arrived";
    dp_petr => "data-plane.petr", "packets sent to a Proxy-ETR (negative entry, natively-forward)";
    dp_drop_miss => "data-plane.drop.miss", "packets dropped on a map-cache miss";
    dp_drop_negative => "data-plane.drop.negative", "packets dropped by a negative entry's action";
    dp_drop_no_petr => "data-plane.drop.no-petr", "natively-forward packets dropped: no Proxy-ETR configured";
    dp_drop_no_locator => "data-plane.drop.no-usable-locator", "packets dropped: every locator down or priority 255";
    dp_drop_no_rloc_family => "data-plane.drop.no-rloc-family", "packets dropped: no local RLOC of the locator's family";
    dp_drop_not_ours => "data-plane.drop.not-our-eid", "decapsulated packets for EIDs this ETR does not serve";
    dp_drop_malformed => "data-plane.drop.malformed", "malformed data packets (header or inner IP)";
    dp_drop_queue_full => "data-plane.drop.queue-full", "missed packets dropped: queue full";
    dp_drop_queue_timeout => "data-plane.drop.queue-timeout", "queued packets dropped: mapping not resolved in time";
    dp_drop_sync_pending => "data-plane.drop.sync-pending", "packets dropped while a recovering ITR pulls its peers' caches";
    dp_drop_not_unicast => "data-plane.drop.not-unicast", "packets to multicast or link-local destinations (not resolved)";
    dp_drop_no_itr => "data-plane.drop.no-itr", "packets read from the TUN device with the ITR role off";
    dp_drop_send => "data-plane.drop.send-error", "encapsulated packets the kernel refused";
    dp_drop_tun_write => "data-plane.drop.tun-write-error", "decapsulated packets the TUN device refused";
}

/// Latency histogram (microseconds), Prometheus-style cumulative buckets.
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

pub const BUCKETS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// (upper bound in µs or None for +Inf, cumulative count), total count, sum in µs.
    pub fn snapshot(&self) -> (Vec<(Option<u64>, u64)>, u64, u64) {
        let mut cum = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            cum += c.load(Relaxed);
            out.push((BUCKETS_US.get(i).copied(), cum));
        }
        (out, cum, self.sum_us.load(Relaxed))
    }
}

/// The resolution paths a Map-Resolver (or lig) records latency for.
pub const PATHS: [&str; 6] = ["ms", "ddt", "msx-copy", "msx-direct", "negative", "cache"];

#[derive(Debug, Default)]
pub struct Stats {
    pub counters: Counters,
    /// Resolution latency per path, indexed like [`PATHS`].
    pub resolution: [Histogram; PATHS.len()],
    /// Requests served per path (Map-Resolver).
    pub served: [AtomicU64; PATHS.len()],
}

impl Stats {
    pub fn path_index(path: &str) -> Option<usize> {
        PATHS.iter().position(|p| *p == path)
    }
}

/// Shorthand for `counter.fetch_add(1, Relaxed)`.
#[inline]
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}
