//! The BGP finite state machine for one configured peer (RFC 4271 §8),
//! as a pure value: inputs (the current time, TCP events, messages) go in,
//! [`Output`]s come out. It owns its timers as deadlines; the driver sleeps
//! until [`Fsm::next_deadline`] and calls [`Fsm::poll`]. No I/O, no clock:
//! every transition can be replayed in a test.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::msg::{
    BgpError, CEASE_ADMIN_SHUTDOWN, ERR_FSM, ERR_HOLD_TIMER, Message, Notification, Open,
};
use super::prefix::Family;
use super::update::{Ctx, Update, decode_update};

/// Who opens the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// We connect to the peer (and accept nothing).
    Active,
    /// The peer connects to us.
    Passive,
}

#[derive(Clone, Debug)]
pub struct FsmConfig {
    pub local_as: u32,
    pub peer_as: u32,
    pub bgp_id: Ipv4Addr,
    /// Hold time we offer (0 or at least 3 s).
    pub hold_time: u16,
    pub families: Vec<Family>,
    pub mode: Mode,
    /// First reconnect delay; doubles up to `connect_retry_max`.
    pub connect_retry_min: Duration,
    pub connect_retry_max: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    /// Active: a connection attempt is running. Passive: waiting for one.
    Connect,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

/// What the session agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// 0: no hold timer, no keepalives.
    pub hold_time: u16,
    pub families: Vec<Family>,
    pub route_refresh: bool,
    pub ctx: Ctx,
}

impl Negotiated {
    pub fn keepalive(&self) -> Option<Duration> {
        (self.hold_time > 0).then(|| Duration::from_secs(u64::from(self.hold_time)) / 3)
    }
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open a TCP connection to the peer (Active mode).
    Connect,
    Send(Message),
    /// Close the TCP connection (after sending what came before).
    Close,
    /// The session reached Established.
    Up(Negotiated),
    /// The session left Established (or an attempt failed after OPEN).
    Down(String),
    /// A decoded UPDATE (RFC 7606 findings included).
    Update(Box<Update>),
    /// The peer asked for our routes of a family again (RFC 2918).
    RouteRefresh(Family),
}

/// How long we wait for the peer's OPEN after ours (RFC 4271 suggests 4
/// minutes; bgpd answers at once, so a minute is plenty).
const OPEN_HOLD: Duration = Duration::from_secs(60);

pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    admin_down: bool,
    negotiated: Option<Negotiated>,
    retry: Duration,
    retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    /// Sessions that reached Established, for logs and tests.
    pub established_count: u64,
}

impl Fsm {
    /// A machine that will start (connect or wait) at `now`.
    pub fn new(cfg: FsmConfig, now: Instant) -> Fsm {
        let retry = cfg.connect_retry_min;
        Fsm {
            cfg,
            state: State::Idle,
            admin_down: false,
            negotiated: None,
            retry,
            retry_at: Some(now),
            hold_at: None,
            keepalive_at: None,
            established_count: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated
            .as_ref()
            .filter(|_| self.state == State::Established)
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    /// The earliest timer, if any runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retry_at, self.hold_at, self.keepalive_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every timer that is due.
    pub fn poll(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.hold_at.is_some_and(|t| t <= now) {
            self.hold_at = None;
            let n = Notification::new(ERR_HOLD_TIMER, 0);
            out.push(Output::Send(Message::Notification(n)));
            self.fail(now, "hold timer expired".into(), &mut out);
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            out.push(Output::Send(Message::Keepalive));
            self.keepalive_at = self
                .negotiated
                .as_ref()
                .and_then(|n| n.keepalive())
                .map(|k| now + k);
        }
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            if self.state == State::Idle && !self.admin_down {
                self.state = State::Connect;
                if self.cfg.mode == Mode::Active {
                    out.push(Output::Connect);
                }
            } else if self.state == State::Connect && self.cfg.mode == Mode::Active {
                // The attempt took too long: give up on it and try again later.
                out.push(Output::Close);
                self.enter_idle(now);
            }
        }
        out
    }

    /// The TCP connection is up (ours completed, or the peer's accepted).
    pub fn tcp_up(&mut self, now: Instant) -> Vec<Output> {
        // A passive speaker takes bgpd's connection whenever it is not
        // administratively down, also before its first timer ran (a loaded
        // host accepted the connection before that and closed it).
        if self.state == State::Idle && self.cfg.mode == Mode::Passive && !self.admin_down {
            self.state = State::Connect;
        }
        if self.state != State::Connect {
            // Not expecting one (a second connection, or administratively down).
            return vec![Output::Close];
        }
        self.retry_at = None;
        self.state = State::OpenSent;
        self.hold_at = Some(now + OPEN_HOLD);
        let open = Open::new(
            self.cfg.local_as,
            self.cfg.hold_time,
            self.cfg.bgp_id,
            &self.cfg.families,
        );
        vec![Output::Send(Message::Open(open))]
    }

    /// The connection attempt failed or the connection closed.
    pub fn tcp_down(&mut self, now: Instant, reason: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::Idle {
            self.fail(now, format!("connection lost: {reason}"), &mut out);
            // The socket is already gone: no Close needed.
            out.retain(|o| *o != Output::Close);
        }
        out
    }

    /// The byte stream could not be framed (bad marker, length or type).
    pub fn framing_error(&mut self, now: Instant, e: &BgpError) -> Vec<Output> {
        let mut out = vec![Output::Send(Message::Notification(e.notification()))];
        self.fail(now, format!("bad message from the peer: {e}"), &mut out);
        out
    }

    /// A complete message arrived (header already checked).
    pub fn message(&mut self, now: Instant, raw: &[u8]) -> Vec<Output> {
        match Message::decode(raw) {
            Ok(m) => self.on_message(now, m),
            Err(e) => self.framing_error(now, &e),
        }
    }

    fn on_message(&mut self, now: Instant, m: Message) -> Vec<Output> {
        let mut out = Vec::new();
        match (self.state, m) {
            (_, Message::Notification(n)) => {
                self.fail(now, format!("peer sent NOTIFICATION {n}"), &mut out);
            }
            (State::OpenSent, Message::Open(o)) => match self.check_open(&o) {
                Ok(neg) => {
                    out.push(Output::Send(Message::Keepalive));
                    self.state = State::OpenConfirm;
                    self.hold_at = (neg.hold_time > 0)
                        .then(|| now + Duration::from_secs(u64::from(neg.hold_time)));
                    self.keepalive_at = neg.keepalive().map(|k| now + k);
                    self.negotiated = Some(neg);
                }
                Err(e) => {
                    out.push(Output::Send(Message::Notification(e.notification())));
                    self.fail(now, format!("refused the peer's OPEN: {e}"), &mut out);
                }
            },
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                self.retry = self.cfg.connect_retry_min;
                self.established_count += 1;
                self.touch_hold(now);
                if let Some(n) = &self.negotiated {
                    out.push(Output::Up(n.clone()));
                }
            }
            (State::Established, Message::Keepalive) => self.touch_hold(now),
            (State::Established, Message::Update(body)) => {
                self.touch_hold(now);
                let ctx = self.negotiated.as_ref().map(|n| n.ctx).unwrap_or_default();
                match decode_update(&body, &ctx) {
                    Ok(u) => out.push(Output::Update(Box::new(u))),
                    Err(e) => {
                        out.push(Output::Send(Message::Notification(e.notification())));
                        self.fail(
                            now,
                            format!("session reset on a malformed UPDATE: {e}"),
                            &mut out,
                        );
                    }
                }
            }
            (State::Established, Message::RouteRefresh { afi, safi }) => {
                self.touch_hold(now);
                // RFC 2918 §4: an unsupported family is ignored.
                if let Some(f) = Family::from_afi_safi(afi, safi)
                    && self
                        .negotiated
                        .as_ref()
                        .is_some_and(|n| n.families.contains(&f))
                {
                    out.push(Output::RouteRefresh(f));
                }
            }
            (state, m) => {
                // RFC 6608 subcodes: 1 OpenSent, 2 OpenConfirm, 3 Established.
                let sub = match state {
                    State::OpenSent => 1,
                    State::OpenConfirm => 2,
                    State::Established => 3,
                    _ => 0,
                };
                out.push(Output::Send(Message::Notification(Notification::new(
                    ERR_FSM, sub,
                ))));
                self.fail(
                    now,
                    format!("unexpected {} in state {}", m.name(), state.name()),
                    &mut out,
                );
            }
        }
        out
    }

    /// Stops the session for good (shutdown): NOTIFICATION Cease if a
    /// session exists, then no reconnect.
    pub fn stop(&mut self, now: Instant, why: &str) -> Vec<Output> {
        let mut out = Vec::new();
        self.admin_down = true;
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            let mut data = vec![why.len().min(128) as u8];
            data.extend_from_slice(&why.as_bytes()[..why.len().min(128)]);
            out.push(Output::Send(Message::Notification(Notification {
                data,
                ..Notification::cease(CEASE_ADMIN_SHUTDOWN)
            })));
        }
        if self.state != State::Idle {
            self.fail(now, format!("stopped: {why}"), &mut out);
        }
        self.retry_at = None;
        out
    }

    /// Messages to send that ask the peer to re-send a family (RFC 2918).
    pub fn route_refresh(&self, family: Family) -> Option<Message> {
        let n = self.negotiated()?;
        (n.route_refresh && n.families.contains(&family)).then_some(Message::RouteRefresh {
            afi: family.afi(),
            safi: family.safi(),
        })
    }

    fn touch_hold(&mut self, now: Instant) {
        if let Some(n) = &self.negotiated
            && n.hold_time > 0
        {
            self.hold_at = Some(now + Duration::from_secs(u64::from(n.hold_time)));
        }
    }

    fn check_open(&self, o: &Open) -> Result<Negotiated, BgpError> {
        let asn = o.asn();
        if asn != self.cfg.peer_as {
            return Err(BgpError::BadPeerAs {
                got: asn,
                want: self.cfg.peer_as,
            });
        }
        if o.hold_time == 1 || o.hold_time == 2 {
            return Err(BgpError::BadHoldTime(o.hold_time));
        }
        let id = o.bgp_id;
        if id.is_unspecified()
            || id.is_multicast()
            || u32::from(id) >= 0xF000_0000
            || id == self.cfg.bgp_id
        {
            return Err(BgpError::BadBgpId(id));
        }
        if !o.four_octet_as() && self.cfg.local_as > 65535 {
            return Err(BgpError::MissingCapability("4-octet AS numbers (RFC 6793)"));
        }
        let theirs = o.families();
        let families: Vec<Family> = self
            .cfg
            .families
            .iter()
            .copied()
            .filter(|f| theirs.contains(f))
            .collect();
        if families.is_empty() {
            return Err(BgpError::MissingCapability("a common address family"));
        }
        let hold_time = if o.hold_time == 0 || self.cfg.hold_time == 0 {
            0
        } else {
            o.hold_time.min(self.cfg.hold_time)
        };
        Ok(Negotiated {
            peer_as: asn,
            peer_id: id,
            hold_time,
            route_refresh: o.route_refresh(),
            ctx: Ctx {
                four_octet_as: o.four_octet_as(),
                ipv4: families.contains(&Family::Ipv4Unicast),
                ipv6: families.contains(&Family::Ipv6Unicast),
            },
            families,
        })
    }

    /// Ends the current attempt/session: Close, Down if a session existed,
    /// back to Idle with the reconnect timer running.
    fn fail(&mut self, now: Instant, reason: String, out: &mut Vec<Output>) {
        let was = self.state;
        out.push(Output::Close);
        if matches!(
            was,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            out.push(Output::Down(reason));
        }
        self.enter_idle(now);
    }

    fn enter_idle(&mut self, now: Instant) {
        self.state = State::Idle;
        self.negotiated = None;
        self.hold_at = None;
        self.keepalive_at = None;
        if !self.admin_down {
            self.retry_at = Some(now + self.retry);
            self.retry = (self.retry * 2).min(self.cfg.connect_retry_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::msg::{
        Capability, ERR_CEASE, ERR_OPEN, ERR_UPDATE, OPEN_BAD_BGP_ID, OPEN_BAD_PEER_AS,
    };
    use crate::bgp::update::{AsPath, PathAttrs, announce_bodies};

    fn cfg() -> FsmConfig {
        FsmConfig {
            local_as: 65002,
            peer_as: 65002,
            bgp_id: Ipv4Addr::new(127, 0, 0, 2),
            hold_time: 9,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            mode: Mode::Active,
            connect_retry_min: Duration::from_millis(500),
            connect_retry_max: Duration::from_secs(4),
        }
    }

    fn peer_open(hold: u16) -> Vec<u8> {
        Message::Open(Open::new(
            65002,
            hold,
            Ipv4Addr::new(192, 0, 2, 2),
            &[Family::Ipv4Unicast, Family::Ipv6Unicast],
        ))
        .encode()
    }

    fn sent(out: &[Output]) -> Vec<&'static str> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(m) => Some(m.name()),
                _ => None,
            })
            .collect()
    }

    /// Drives a machine to Established; returns it and the time.
    fn established(hold: u16) -> (Fsm, Instant) {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(), t0);
        assert_eq!(f.poll(t0), vec![Output::Connect]);
        assert_eq!(f.state(), State::Connect);
        assert_eq!(sent(&f.tcp_up(t0)), vec!["OPEN"]);
        assert_eq!(f.state(), State::OpenSent);
        assert_eq!(sent(&f.message(t0, &peer_open(hold))), vec!["KEEPALIVE"]);
        assert_eq!(f.state(), State::OpenConfirm);
        let out = f.message(t0, &Message::Keepalive.encode());
        assert!(
            matches!(&out[..], [Output::Up(n)] if n.hold_time == hold.min(9)),
            "{out:?}"
        );
        assert_eq!(f.state(), State::Established);
        (f, t0)
    }

    #[test]
    fn reaches_established_and_negotiates_the_smaller_hold_time() {
        let (f, _) = established(3);
        let n = f.negotiated().unwrap();
        assert_eq!(n.hold_time, 3);
        assert_eq!(n.keepalive(), Some(Duration::from_secs(1)));
        assert!(n.ctx.four_octet_as && n.ctx.ipv6 && n.route_refresh);
        assert_eq!(
            f.route_refresh(Family::Ipv6Unicast),
            Some(Message::RouteRefresh { afi: 2, safi: 1 })
        );
    }

    #[test]
    fn keepalives_and_hold_timer() {
        let (mut f, t0) = established(3);
        assert_eq!(f.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let out = f.poll(t0 + Duration::from_secs(1));
        assert_eq!(sent(&out), vec!["KEEPALIVE"]);
        // A KEEPALIVE from the peer pushes the hold timer.
        f.message(t0 + Duration::from_secs(2), &Message::Keepalive.encode());
        assert!(
            f.poll(t0 + Duration::from_millis(4500))
                .iter()
                .all(|o| !matches!(o, Output::Down(_)))
        );
        // Silence: the hold timer fires, NOTIFICATION 4, Down, reconnect later.
        let out = f.poll(t0 + Duration::from_secs(6));
        assert_eq!(
            out[0],
            Output::Send(Message::Notification(Notification::new(ERR_HOLD_TIMER, 0)))
        );
        assert!(out.contains(&Output::Close));
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Down(r) if r.contains("hold timer")))
        );
        assert_eq!(f.state(), State::Idle);
        let retry = f.next_deadline().unwrap();
        assert_eq!(f.poll(retry), vec![Output::Connect]);
    }

    #[test]
    fn updates_are_decoded_in_established() {
        let (mut f, t0) = established(9);
        let a = PathAttrs {
            as_path: AsPath::sequence(&[65001]),
            next_hop: Some("198.51.100.1".parse().unwrap()),
            ..Default::default()
        };
        let body = announce_bodies(
            &a,
            Family::Ipv4Unicast,
            &["203.0.113.0/24".parse().unwrap()],
            &Ctx::default(),
        )
        .remove(0);
        let out = f.message(t0, &Message::Update(body).encode());
        assert!(matches!(&out[..], [Output::Update(u)] if u.announced.len() == 1));
        // A malformed UPDATE that cannot be treated as withdraw resets the session.
        let out = f.message(t0, &Message::Update(vec![0, 9, 0, 0]).encode());
        assert!(matches!(&out[0], Output::Send(Message::Notification(n)) if n.code == ERR_UPDATE));
        assert!(out.iter().any(|o| matches!(o, Output::Down(_))));
    }

    #[test]
    fn route_refresh_from_the_peer() {
        let (mut f, t0) = established(9);
        let out = f.message(t0, &Message::RouteRefresh { afi: 1, safi: 1 }.encode());
        assert_eq!(out, vec![Output::RouteRefresh(Family::Ipv4Unicast)]);
        // Unsupported family: ignored.
        assert!(
            f.message(t0, &Message::RouteRefresh { afi: 25, safi: 70 }.encode())
                .is_empty()
        );
    }

    #[test]
    fn open_checks() {
        let t0 = Instant::now();
        let check = |open: Open| {
            let mut f = Fsm::new(cfg(), t0);
            f.poll(t0);
            f.tcp_up(t0);
            let out = f.message(t0, &Message::Open(open).encode());
            assert_eq!(f.state(), State::Idle);
            match &out[0] {
                Output::Send(Message::Notification(n)) => (n.code, n.subcode),
                o => panic!("{o:?}"),
            }
        };
        let good = || {
            Open::new(
                65002,
                9,
                Ipv4Addr::new(192, 0, 2, 2),
                &[Family::Ipv4Unicast],
            )
        };
        assert_eq!(
            check(Open::new(
                65001,
                9,
                Ipv4Addr::new(192, 0, 2, 2),
                &[Family::Ipv4Unicast]
            )),
            (ERR_OPEN, OPEN_BAD_PEER_AS)
        );
        assert_eq!(
            check(Open {
                bgp_id: Ipv4Addr::new(127, 0, 0, 2),
                ..good()
            }),
            (ERR_OPEN, OPEN_BAD_BGP_ID)
        );
        assert_eq!(
            check(Open {
                bgp_id: Ipv4Addr::UNSPECIFIED,
                ..good()
            }),
            (ERR_OPEN, OPEN_BAD_BGP_ID)
        );
        assert_eq!(
            check(Open {
                hold_time: 2,
                ..good()
            })
            .1,
            6
        );
        let l2vpn = Open {
            capabilities: vec![
                Capability::Multiprotocol { afi: 25, safi: 70 },
                Capability::FourOctetAs(65002),
            ],
            ..good()
        };
        assert_eq!(check(l2vpn).1, 7);
    }

    #[test]
    fn notification_and_unexpected_messages_end_the_session() {
        let (mut f, t0) = established(9);
        let out = f.message(
            t0,
            &Message::Notification(Notification::cease(CEASE_ADMIN_SHUTDOWN)).encode(),
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Down(r) if r.contains("Cease")))
        );
        assert!(
            sent(&out).is_empty(),
            "no NOTIFICATION answers a NOTIFICATION"
        );
        let (mut f, t0) = established(9);
        let out = f.message(t0, &peer_open(9));
        assert!(
            matches!(&out[0], Output::Send(Message::Notification(n)) if n.code == ERR_FSM && n.subcode == 3)
        );
        // An UPDATE before Established is an FSM error too.
        let mut f = Fsm::new(cfg(), t0);
        f.poll(t0);
        f.tcp_up(t0);
        let out = f.message(t0, &Message::Update(vec![0, 0, 0, 0]).encode());
        assert!(
            matches!(&out[0], Output::Send(Message::Notification(n)) if n.code == ERR_FSM && n.subcode == 1)
        );
    }

    #[test]
    fn reconnect_backoff_doubles_and_resets_on_success() {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(), t0);
        let mut t = t0;
        let mut gaps = Vec::new();
        for _ in 0..5 {
            assert_eq!(f.poll(t), vec![Output::Connect]);
            f.tcp_down(t, "refused");
            let next = f.next_deadline().unwrap();
            gaps.push(next - t);
            t = next;
        }
        let ms: Vec<u128> = gaps.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 4000]);
        // After an Established session the backoff starts over.
        let (mut f, t0) = established(9);
        let out = f.tcp_down(t0, "reset by peer");
        assert!(out.iter().any(|o| matches!(o, Output::Down(_))));
        assert!(!out.contains(&Output::Close));
        assert_eq!(f.next_deadline(), Some(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn stop_sends_cease_and_stays_down() {
        let (mut f, t0) = established(9);
        let out = f.stop(t0, "shutting down");
        assert!(
            matches!(&out[0], Output::Send(Message::Notification(n)) if n.code == ERR_CEASE && n.subcode == CEASE_ADMIN_SHUTDOWN)
        );
        assert_eq!(f.next_deadline(), None);
        assert!(f.poll(t0 + Duration::from_secs(60)).is_empty());
        assert_eq!(f.tcp_up(t0), vec![Output::Close]);
    }

    #[test]
    fn passive_mode_waits_and_rejects_a_second_connection() {
        let t0 = Instant::now();
        let mut f = Fsm::new(Mode::Passive.into_cfg(), t0);
        assert!(f.poll(t0).is_empty());
        assert_eq!(f.state(), State::Connect);
        assert_eq!(sent(&f.tcp_up(t0)), vec!["OPEN"]);
        assert_eq!(f.tcp_up(t0), vec![Output::Close]);
        // bgpd's connection accepted before the first timer ran: taken.
        let mut f = Fsm::new(Mode::Passive.into_cfg(), t0);
        assert_eq!(sent(&f.tcp_up(t0)), vec!["OPEN"]);
    }

    impl Mode {
        fn into_cfg(self) -> FsmConfig {
            FsmConfig {
                mode: self,
                ..cfg()
            }
        }
    }

    #[test]
    fn framing_errors_reset() {
        let (mut f, t0) = established(9);
        let out = f.framing_error(t0, &BgpError::NotSynchronized);
        assert!(
            matches!(&out[0], Output::Send(Message::Notification(n)) if n.code == 1 && n.subcode == 1)
        );
        assert_eq!(f.state(), State::Idle);
    }
}
