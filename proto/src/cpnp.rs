//! CPNP, the Connectivity Provisioning Negotiation Protocol (RFC 8921, read as
//! draft-boucadair-connectivity-provisioning-protocol-20; wire-formats.md §3),
//! which LISP-MSX uses to interconnect mapping systems once BGP or OSPF has
//! discovered them (the RFC's use case 11).
//!
//! The RFC gives the messages in RBNF only and allows JSON; we encode one JSON
//! object per message, keyed by the RFC's attribute names (`VERSION`,
//! `METHOD_CODE`, ...). Unknown keys are refused: a peer speaking a different
//! dialect should fail loudly, not be half-understood.
//!
//! Over TCP every message is framed as `Length(u32, BE) | JSON`, optionally
//! followed by a 32-byte HMAC-SHA-256 over length and JSON when a pre-shared
//! key is configured (labs; production runs inside mutually authenticated TLS).
//!
//! The CPD carried here is the LISP-MSX profile of an RFC 7297 CPP: what one
//! mapping system offers another (contact, services, EID prefixes, limits).

use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use thiserror::Error;

use crate::addr::EidPrefix;

/// The only CPNP version.
pub const VERSION: u8 = 1;
/// Length prefix of a TCP frame.
pub const FRAME_HEADER_LEN: usize = 4;
/// Largest JSON body we send or accept (a CPD listing many EID prefixes
/// still fits easily).
pub const MAX_FRAME: usize = 64 * 1024;
/// Length of the HMAC-SHA-256 trailer.
pub const MAC_LEN: usize = 32;
/// Longest agreement identifier we accept (opaque strings to the other side).
pub const MAX_ID_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CpnpError {
    #[error("malformed CPNP JSON: {0}")]
    Json(String),
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("CPNP frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("empty CPNP frame")]
    EmptyFrame,
    #[error("CPNP frame authentication failed")]
    BadMac,
}

impl CpnpError {
    /// A short stable label for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            CpnpError::Json(_) => "json",
            CpnpError::Invalid { .. } => "invalid",
            CpnpError::FrameTooLarge { .. } => "too_large",
            CpnpError::EmptyFrame => "empty",
            CpnpError::BadMac => "bad_mac",
        }
    }
}

fn invalid(field: &'static str, reason: &'static str) -> CpnpError {
    CpnpError::Invalid { field, reason }
}

/// Enums carried as their number in JSON, refusing unknown numbers.
macro_rules! numbered_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $v = $n),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn code(self) -> u8 {
                self as u8
            }

            pub fn from_code(c: u8) -> Option<Self> {
                match c {
                    $($n => Some($name::$v),)+
                    _ => None,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u8(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let c = u8::deserialize(d)?;
                $name::from_code(c).ok_or_else(|| {
                    serde::de::Error::custom(format!(concat!("unknown ", stringify!($name), " {}"), c))
                })
            }
        }
    };
}

numbered_enum! {
    /// METHOD_CODE (RFC 8921 §9.2).
    MethodCode {
        Quotation = 1,
        Processing = 2,
        Offer = 3,
        Accept = 4,
        Decline = 5,
        Ack = 6,
        Cancel = 7,
        Withdraw = 8,
        Update = 9,
        Fail = 10,
        Activate = 11,
    }
}

impl MethodCode {
    pub fn name(self) -> &'static str {
        match self {
            MethodCode::Quotation => "QUOTATION",
            MethodCode::Processing => "PROCESSING",
            MethodCode::Offer => "OFFER",
            MethodCode::Accept => "ACCEPT",
            MethodCode::Decline => "DECLINE",
            MethodCode::Ack => "ACK",
            MethodCode::Cancel => "CANCEL",
            MethodCode::Withdraw => "WITHDRAW",
            MethodCode::Update => "UPDATE",
            MethodCode::Fail => "FAIL",
            MethodCode::Activate => "ACTIVATE",
        }
    }
}

impl fmt::Display for MethodCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

numbered_enum! {
    /// STATUS_CODE of FAIL (§9.2.10).
    FailStatus {
        Validation = 1,
        AuthenticationRequired = 2,
        AuthorizationFailed = 3,
        AdministrativelyProhibited = 4,
        OutOfResources = 5,
        NoNetworkPresence = 6,
        MoreTimeRejected = 7,
        UnsupportedActivationType = 8,
    }
}

numbered_enum! {
    /// PROCESSING_SUBCODE: why the server asks for more time (§9.2.2).
    ProcessingSubcode {
        LocalUpgrade = 1,
        ExternalResources = 2,
    }
}

numbered_enum! {
    /// REASON of DECLINE (§9.2.5).
    DeclineReason {
        /// Unacceptable gap between the request and the offer.
        Gap = 1,
        /// Conflict with another offer from another server.
        Conflict = 2,
        /// Activation type mismatch.
        Activation = 3,
    }
}

/// An RFC 3339 date-time, kept as received after validation (the RFC's date
/// attributes are strings; keeping the text makes re-encoding exact).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rfc3339(String);

impl Rfc3339 {
    pub fn new(s: impl Into<String>) -> Result<Self, CpnpError> {
        let s = s.into();
        parse_rfc3339(&s).ok_or(invalid("date", "not an RFC 3339 date-time"))?;
        Ok(Rfc3339(s))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (years 0..=9999).
    pub fn from_unix(secs: i64) -> Option<Self> {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        Some(Rfc3339(format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )))
    }

    /// Seconds since the Unix epoch (fractions dropped; a leap second counts
    /// as the next second).
    pub fn to_unix(&self) -> i64 {
        parse_rfc3339(&self.0).unwrap_or(0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Rfc3339 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Rfc3339::new(s).map_err(|e| e.to_string())
    }
}

impl From<Rfc3339> for String {
    fn from(d: Rfc3339) -> String {
        d.0
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Validates RFC 3339 §5.6 `date-time` and returns its Unix time.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0i64, |acc, d| Some(acc * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=mdays).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && sep(i + 3, b":") => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'+' { o } else { -o }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// The four forms of a Connectivity Provisioning Document (§8.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CpdForm {
    Requested,
    Offered,
    Agreed,
    Empty,
}

/// Which LISP-MSX services a CPD requests or offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub struct MsxServices {
    /// Map-Bulk-Request over TCP.
    #[serde(default)]
    pub bulk: bool,
    /// Map-Subscribe.
    #[serde(default)]
    pub subscribe: bool,
    /// The peer may send Map-Requests directly to our mapping system.
    #[serde(default)]
    pub direct_map_request: bool,
}

/// Limits the provider applies to the customer; absent = not limited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub struct RateLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_requests_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_requests_per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscriptions: Option<u32>,
}

/// The LISP-MSX service clauses of a CPD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub struct MsxService {
    /// Where the mapping system is reached (the MS-target contact).
    pub mapping_system_contact: IpAddr,
    /// MS identifier (the MS-target local admin field).
    pub ms_identifier: u16,
    pub as_number: u32,
    pub services: MsxServices,
    /// EID prefixes covered, as strings like `192.0.2.0/24` or `[7]2001:db8::/32` (instance 7).
    #[serde(with = "eid_prefix_strings")]
    pub eid_prefixes: Vec<EidPrefix>,
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Duration of the agreement in seconds; absent = until withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_seconds: Option<u32>,
}

/// EID prefixes as their text form; refuses what the text form cannot carry
/// (AS-number LCAFs, AFI 0) instead of writing something unparsable.
mod eid_prefix_strings {
    use super::*;
    use crate::addr::Addr;
    use serde::ser::SerializeSeq;

    pub fn serialize<S: Serializer>(v: &[EidPrefix], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for p in v {
            if p.addr.asn.is_some()
                || p.addr.addr == Addr::None
                || p.addr.iid.is_some_and(|i| i.mask_len != 0)
            {
                return Err(serde::ser::Error::custom(format!(
                    "EID prefix {p} has no CPNP text form"
                )));
            }
            seq.serialize_element(&p.to_string())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EidPrefix>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| s.parse::<EidPrefix>().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// CONNECTIVITY_PROVISIONING_DOCUMENT: its form and, unless Empty, the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub struct Cpd {
    pub form: CpdForm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lisp_msx: Option<MsxService>,
}

impl Cpd {
    pub fn empty() -> Self {
        Cpd {
            form: CpdForm::Empty,
            lisp_msx: None,
        }
    }

    pub fn new(form: CpdForm, service: MsxService) -> Self {
        Cpd {
            form,
            lisp_msx: Some(service),
        }
    }

    fn validate(&self) -> Result<(), CpnpError> {
        match (self.form, &self.lisp_msx) {
            (CpdForm::Empty, Some(_)) => Err(invalid("CPD", "an Empty CPD carries no service")),
            (CpdForm::Empty, None) => Ok(()),
            (_, None) => Err(invalid(
                "CPD",
                "a Requested/Offered/Agreed CPD needs LISP_MSX",
            )),
            (_, Some(s))
                if s.eid_prefixes
                    .iter()
                    .any(|p| p.check("EID prefix").is_err()) =>
            {
                Err(invalid(
                    "CPD EID_PREFIXES",
                    "mask length exceeds the family",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Customer or Provider Description information element (§9.1.10.1-2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub struct PartyDescription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telephone_number: Vec<String>,
    /// Provider only in the RFC; harmless for a customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<u32>,
}

/// ACTIVATION_TYPE (§9.1.10.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivationType {
    Permanent,
    Scheduled,
}

/// ACTIVATION_SCHEDULE of ACTIVATE: a date, or 0 to de-activate (§9.2.11).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActivationSchedule {
    Deactivate,
    At(Rfc3339),
}

impl Serialize for ActivationSchedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ActivationSchedule::Deactivate => s.serialize_u8(0),
            ActivationSchedule::At(d) => s.serialize_str(d.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for ActivationSchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ActivationSchedule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0 or an RFC 3339 date-time")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if v == 0 {
                    Ok(ActivationSchedule::Deactivate)
                } else {
                    Err(E::custom("ACTIVATION_SCHEDULE number other than 0"))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_u64(
                    u64::try_from(v).map_err(|_| E::custom("negative ACTIVATION_SCHEDULE"))?,
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Rfc3339::new(v)
                    .map(ActivationSchedule::At)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// One CPNP message. Which attributes are required depends on METHOD_CODE;
/// [`validate`](Self::validate) checks that, [`decode`](Self::decode) calls it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub struct CpnpMessage {
    pub version: u8,
    pub method_code: MethodCode,
    /// Random start, +1 per new message, unchanged on retransmission.
    pub sequence_number: u32,
    /// Random, chosen by the client per transaction.
    pub transaction_id: u32,
    pub customer_agreement_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_agreement_identifier: Option<String>,
    /// Chosen by the server, one per order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_response_time: Option<Rfc3339>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_offer_time: Option<Rfc3339>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_offer_time: Option<Rfc3339>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpd: Option<Cpd>,
    /// FAIL only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<FailStatus>,
    /// PROCESSING only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_subcode: Option<ProcessingSubcode>,
    /// DECLINE only; may repeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<DeclineReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_type: Option<ActivationType>,
    /// ACTIVATE (required) and OFFER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_schedule: Option<ActivationSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<PartyDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<PartyDescription>,
}

impl CpnpMessage {
    /// A message with the mandatory header attributes and nothing else.
    pub fn new(
        method_code: MethodCode,
        sequence_number: u32,
        transaction_id: u32,
        customer_id: impl Into<String>,
    ) -> Self {
        CpnpMessage {
            version: VERSION,
            method_code,
            sequence_number,
            transaction_id,
            customer_agreement_identifier: customer_id.into(),
            provider_agreement_identifier: None,
            nonce: None,
            expected_response_time: None,
            expected_offer_time: None,
            validity_offer_time: None,
            cpd: None,
            status_code: None,
            processing_subcode: None,
            reason: Vec::new(),
            activation_type: None,
            activation_schedule: None,
            customer: None,
            provider: None,
        }
    }

    /// The RFC's per-method rules (§9.2 RBNF and §9.1):
    /// - VERSION is 1; the agreement identifiers are non-empty and at most
    ///   [`MAX_ID_LEN`] bytes.
    /// - PROVIDER_AGREEMENT_IDENTIFIER in every message except QUOTATION and
    ///   CANCEL (CANCEL's RBNF omits it: a client may cancel before the
    ///   server's PROCESSING has told it the identifier).
    /// - NONCE in OFFER, ACCEPT, DECLINE, WITHDRAW, UPDATE and ACTIVATE.
    /// - STATUS_CODE in FAIL and only there; PROCESSING_SUBCODE only in
    ///   PROCESSING; REASON only in DECLINE.
    /// - CPD: Requested in QUOTATION and UPDATE, Offered in OFFER, Agreed in
    ///   ACCEPT; VALIDITY_OFFER_TIME in OFFER; EXPECTED_RESPONSE_TIME in
    ///   UPDATE; ACTIVATION_SCHEDULE in ACTIVATE.
    pub fn validate(&self) -> Result<(), CpnpError> {
        use MethodCode::*;
        let m = self.method_code;
        if self.version != VERSION {
            return Err(invalid("VERSION", "must be 1"));
        }
        check_id(
            &self.customer_agreement_identifier,
            "CUSTOMER_AGREEMENT_IDENTIFIER",
        )?;
        match &self.provider_agreement_identifier {
            Some(id) => check_id(id, "PROVIDER_AGREEMENT_IDENTIFIER")?,
            None if !matches!(m, Quotation | Cancel) => {
                return Err(invalid(
                    "PROVIDER_AGREEMENT_IDENTIFIER",
                    "required in every message but QUOTATION and CANCEL",
                ));
            }
            None => {}
        }
        if self.nonce.is_none()
            && matches!(m, Offer | Accept | Decline | Withdraw | Update | Activate)
        {
            return Err(invalid(
                "NONCE",
                "required in OFFER, ACCEPT, DECLINE, WITHDRAW, UPDATE and ACTIVATE",
            ));
        }
        if (m == Fail) != self.status_code.is_some() {
            return Err(invalid("STATUS_CODE", "required in FAIL and only there"));
        }
        if m != Processing && self.processing_subcode.is_some() {
            return Err(invalid("PROCESSING_SUBCODE", "belongs to PROCESSING"));
        }
        if m != Decline && !self.reason.is_empty() {
            return Err(invalid("REASON", "belongs to DECLINE"));
        }
        if let Some(cpd) = &self.cpd {
            cpd.validate()?;
        }
        let form = self.cpd.as_ref().map(|c| c.form);
        let need = |want: CpdForm, reason: &'static str| {
            if form == Some(want) {
                Ok(())
            } else {
                Err(invalid("CPD", reason))
            }
        };
        match m {
            Quotation | Update => need(
                CpdForm::Requested,
                "QUOTATION and UPDATE carry a Requested CPD",
            )?,
            Offer => need(CpdForm::Offered, "OFFER carries an Offered CPD")?,
            Accept => need(CpdForm::Agreed, "ACCEPT carries an Agreed CPD")?,
            _ => {}
        }
        if m == Offer && self.validity_offer_time.is_none() {
            return Err(invalid("VALIDITY_OFFER_TIME", "required in OFFER"));
        }
        if m == Update && self.expected_response_time.is_none() {
            return Err(invalid("EXPECTED_RESPONSE_TIME", "required in UPDATE"));
        }
        if m == Activate && self.activation_schedule.is_none() {
            return Err(invalid("ACTIVATION_SCHEDULE", "required in ACTIVATE"));
        }
        Ok(())
    }

    /// Appends the JSON of a valid message.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), CpnpError> {
        self.validate()?;
        serde_json::to_writer(buf, self).map_err(|e| CpnpError::Json(e.to_string()))
    }

    pub fn to_json(&self) -> Result<Vec<u8>, CpnpError> {
        let mut v = Vec::with_capacity(256);
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Parses and validates one JSON message.
    pub fn decode(json: &[u8]) -> Result<CpnpMessage, CpnpError> {
        let m: CpnpMessage =
            serde_json::from_slice(json).map_err(|e| CpnpError::Json(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }
}

fn check_id(id: &str, field: &'static str) -> Result<(), CpnpError> {
    if id.is_empty() {
        return Err(invalid(field, "empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(field, "longer than 256 bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

fn mac_over(psk: &[u8], covered: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(psk).expect("HMAC takes keys of any length");
    mac.update(covered);
    mac
}

/// Encodes one TCP frame: `Length(u32) | JSON`, plus the HMAC-SHA-256 of both
/// when `psk` is given.
pub fn encode_frame(msg: &CpnpMessage, psk: Option<&[u8]>) -> Result<Vec<u8>, CpnpError> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + 256 + MAC_LEN);
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    msg.encode(&mut out)?;
    let len = out.len() - FRAME_HEADER_LEN;
    if len > MAX_FRAME {
        return Err(CpnpError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    out[..FRAME_HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    if let Some(key) = psk {
        let tag = mac_over(key, &out).finalize().into_bytes();
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

/// Takes the next frame off the front of a TCP byte stream:
/// `Ok(Some((msg, used)))`, `Ok(None)` when more bytes are needed. With a
/// `psk` the trailer is verified (in constant time) before the JSON is parsed.
/// Oversized or empty frames are errors as soon as the length is read.
pub fn decode_frame(
    buf: &[u8],
    psk: Option<&[u8]>,
) -> Result<Option<(CpnpMessage, usize)>, CpnpError> {
    let Some(head) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*head) as usize;
    if len == 0 {
        return Err(CpnpError::EmptyFrame);
    }
    if len > MAX_FRAME {
        return Err(CpnpError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    let body_end = FRAME_HEADER_LEN + len;
    let total = body_end + if psk.is_some() { MAC_LEN } else { 0 };
    if buf.len() < total {
        return Ok(None);
    }
    if let Some(key) = psk {
        mac_over(key, &buf[..body_end])
            .verify_slice(&buf[body_end..total])
            .map_err(|_| CpnpError::BadMac)?;
    }
    let msg = CpnpMessage::decode(&buf[FRAME_HEADER_LEN..body_end])?;
    Ok(Some((msg, total)))
}

/// Client-side order states (§8.11.1, Figure 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientState {
    Created,
    AwaitingProcessing,
    PqoSent,
    ServerProcessing,
    OfferReceived,
    OfferProcessing,
    AcceptSent,
    /// "AcceptAck" in -15.
    Completed,
    Cancelled,
}

/// Server-side order states (§8.11.2, Figure 9). `Idle` stands for "no order
/// yet": the figure's QUOTATION arrow into PQOReceived starts there. The
/// Child* states track an order the server placed with another provider to
/// serve this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerState {
    Idle,
    PqoReceived,
    AwaitingProcessing,
    OfferProposed,
    ProcessingReceived,
    AcceptReceived,
    Completed,
    Cancelled,
    ChildCreated,
    ChildPqoSent,
    ChildServerProcessing,
    ChildOfferReceived,
    ChildOfferProcessing,
    ChildAcceptSent,
    ChildCompleted,
}

/// A message that the state machine does not allow in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("CPNP {msg} not allowed in state {state}")]
pub struct TransitionError {
    pub state: &'static str,
    pub msg: MethodCode,
}

impl ClientState {
    pub fn name(self) -> &'static str {
        match self {
            ClientState::Created => "Created",
            ClientState::AwaitingProcessing => "AwaitingProcessing",
            ClientState::PqoSent => "PQOSent",
            ClientState::ServerProcessing => "ServerProcessing",
            ClientState::OfferReceived => "OfferReceived",
            ClientState::OfferProcessing => "OfferProcessing",
            ClientState::AcceptSent => "AcceptSent",
            ClientState::Completed => "Completed",
            ClientState::Cancelled => "Cancelled",
        }
    }
}

impl ServerState {
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Idle => "Idle",
            ServerState::PqoReceived => "PQOReceived",
            ServerState::AwaitingProcessing => "AwaitingProcessing",
            ServerState::OfferProposed => "OfferProposed",
            ServerState::ProcessingReceived => "ProcessingReceived",
            ServerState::AcceptReceived => "AcceptReceived",
            ServerState::Completed => "Completed",
            ServerState::Cancelled => "Cancelled",
            ServerState::ChildCreated => "ChildCreated",
            ServerState::ChildPqoSent => "ChildPQOSent",
            ServerState::ChildServerProcessing => "ChildServerProcessing",
            ServerState::ChildOfferReceived => "ChildOfferReceived",
            ServerState::ChildOfferProcessing => "ChildOfferProcessing",
            ServerState::ChildAcceptSent => "ChildAcceptSent",
            ServerState::ChildCompleted => "ChildCompleted",
        }
    }
}

/// The client's order state after exchanging `msg`. As in Figure 8 an edge is
/// labelled by the message, sent or received; the state fixes the direction
/// (e.g. PROCESSING in PQOSent is the server's receipt, in OfferReceived the
/// client's own). Local steps (Created → AwaitingProcessing on administrator
/// approval) are the caller's.
pub fn next_client(state: ClientState, msg: MethodCode) -> Result<ClientState, TransitionError> {
    use ClientState as S;
    use MethodCode::*;
    let next = match (state, msg) {
        // Sent QUOTATION, or UPDATE of a completed order (a new cycle).
        (S::AwaitingProcessing, Quotation | Update) | (S::Completed, Update) => S::PqoSent,
        (S::PqoSent, Processing) => S::ServerProcessing,
        // The server may offer without a PROCESSING first.
        (S::PqoSent | S::ServerProcessing, Offer) => S::OfferReceived,
        // PROCESSING again asks for more time; the client's ACK grants it.
        (S::ServerProcessing, Processing | Ack) => S::ServerProcessing,
        (S::OfferReceived, Processing) => S::OfferProcessing,
        (S::OfferReceived | S::OfferProcessing, Accept) => S::AcceptSent,
        (S::AcceptSent, Ack) => S::Completed,
        // ACK of an ACTIVATE, or a repeated final ACK; ACTIVATE itself.
        (S::Completed, Ack | Activate) => S::Completed,
        (
            S::Created
            | S::AwaitingProcessing
            | S::PqoSent
            | S::ServerProcessing
            | S::OfferReceived
            | S::AcceptSent,
            Cancel,
        ) => S::Cancelled,
        // FAIL either way: the server cannot honour the order, or the client
        // refuses more time.
        (S::PqoSent | S::ServerProcessing | S::AcceptSent, Fail) => S::Cancelled,
        (S::OfferReceived | S::OfferProcessing, Decline) => S::Cancelled,
        (S::Completed, Withdraw) => S::Cancelled,
        // The server's ACK of a CANCEL/DECLINE/WITHDRAW.
        (S::Cancelled, Ack) => S::Cancelled,
        _ => {
            return Err(TransitionError {
                state: state.name(),
                msg,
            });
        }
    };
    Ok(next)
}

/// The server's order state after exchanging `msg` (Figure 9; same labelling
/// convention as [`next_client`]). In the Child* states `msg` is exchanged
/// with the other provider's server. Local steps (AwaitingProcessing →
/// ChildCreated when resources elsewhere are needed, ChildCompleted →
/// AwaitingProcessing once they are secured) are the caller's.
pub fn next_server(state: ServerState, msg: MethodCode) -> Result<ServerState, TransitionError> {
    use MethodCode::*;
    use ServerState as S;
    let next = match (state, msg) {
        (S::Idle, Quotation) => S::PqoReceived,
        // UPDATE opens a new negotiation cycle on a completed order.
        (S::Completed, Update) => S::PqoReceived,
        (S::PqoReceived, Processing) => S::AwaitingProcessing,
        // More time: PROCESSING (sent again), granted by the client's ACK.
        (S::AwaitingProcessing, Processing | Ack) => S::AwaitingProcessing,
        (S::PqoReceived | S::AwaitingProcessing, Offer) => S::OfferProposed,
        (S::OfferProposed, Processing) => S::ProcessingReceived,
        (S::OfferProposed | S::ProcessingReceived, Accept) => S::AcceptReceived,
        // A retransmitted ACCEPT is answered with the ACK again.
        (S::AcceptReceived, Accept) => S::AcceptReceived,
        (S::AcceptReceived, Ack) => S::Completed,
        (S::Completed, Accept | Ack | Activate) => S::Completed,
        (
            S::PqoReceived
            | S::AwaitingProcessing
            | S::OfferProposed
            | S::ProcessingReceived
            | S::AcceptReceived,
            Cancel,
        ) => S::Cancelled,
        // FAIL either way: the server cannot honour the order, or the client
        // refuses more time.
        (S::PqoReceived | S::AwaitingProcessing, Fail) => S::Cancelled,
        (S::OfferProposed | S::ProcessingReceived, Decline) => S::Cancelled,
        (S::Completed, Withdraw) => S::Cancelled,
        // The closing ACK, and retransmissions of what cancelled the order.
        (S::Cancelled, Ack | Cancel | Decline | Withdraw) => S::Cancelled,
        // Child order, the server acting as a client of another provider.
        (S::ChildCreated, Quotation | Update) => S::ChildPqoSent,
        (S::ChildPqoSent, Processing) => S::ChildServerProcessing,
        (S::ChildPqoSent | S::ChildServerProcessing, Offer) => S::ChildOfferReceived,
        (S::ChildServerProcessing, Processing | Ack) => S::ChildServerProcessing,
        (S::ChildOfferReceived, Processing) => S::ChildOfferProcessing,
        (S::ChildOfferReceived | S::ChildOfferProcessing, Accept) => S::ChildAcceptSent,
        (S::ChildAcceptSent, Ack) => S::ChildCompleted,
        (
            S::ChildCreated
            | S::ChildPqoSent
            | S::ChildServerProcessing
            | S::ChildOfferReceived
            | S::ChildAcceptSent,
            Cancel,
        ) => S::Cancelled,
        (S::ChildPqoSent | S::ChildServerProcessing, Fail) => S::Cancelled,
        (S::ChildOfferReceived | S::ChildOfferProcessing, Decline) => S::Cancelled,
        (S::ChildCompleted, Withdraw) => S::Cancelled,
        _ => {
            return Err(TransitionError {
                state: state.name(),
                msg,
            });
        }
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn service() -> MsxService {
        MsxService {
            mapping_system_contact: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
            ms_identifier: 1,
            as_number: 65002,
            services: MsxServices {
                bulk: true,
                subscribe: true,
                direct_map_request: false,
            },
            eid_prefixes: vec![
                "203.0.113.0/26".parse().unwrap(),
                "[7]2001:db8:1::/48".parse().unwrap(),
            ],
            rate_limits: RateLimits {
                map_requests_per_second: Some(1000),
                bulk_requests_per_hour: Some(12),
                max_subscriptions: None,
            },
            validity_seconds: Some(86_400),
        }
    }

    fn quotation() -> CpnpMessage {
        let mut m = CpnpMessage::new(MethodCode::Quotation, 100, 0xdead_beef, "cust-1");
        m.cpd = Some(Cpd::new(CpdForm::Requested, service()));
        m.expected_response_time = Some(Rfc3339::new("2026-08-01T12:00:00Z").unwrap());
        m
    }

    fn offer() -> CpnpMessage {
        let mut m = CpnpMessage::new(MethodCode::Offer, 7, 0xdead_beef, "cust-1");
        m.provider_agreement_identifier = Some("prov-9".into());
        m.nonce = Some(0x0123_4567_89ab_cdef);
        m.validity_offer_time = Some(Rfc3339::new("2026-08-01T13:00:00+02:00").unwrap());
        m.cpd = Some(Cpd::new(CpdForm::Offered, service()));
        m.provider = Some(PartyDescription {
            name: Some("AS65002 mapping".into()),
            as_number: Some(65002),
            ..PartyDescription::default()
        });
        m
    }

    #[test]
    fn json_known_answer() {
        let mut m = CpnpMessage::new(MethodCode::Fail, 5, 42, "c");
        m.provider_agreement_identifier = Some("p".into());
        m.status_code = Some(FailStatus::MoreTimeRejected);
        let json = String::from_utf8(m.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"VERSION":1,"METHOD_CODE":10,"SEQUENCE_NUMBER":5,"TRANSACTION_ID":42,"CUSTOMER_AGREEMENT_IDENTIFIER":"c","PROVIDER_AGREEMENT_IDENTIFIER":"p","STATUS_CODE":7}"#
        );
        assert_eq!(CpnpMessage::decode(json.as_bytes()).unwrap(), m);
    }

    #[test]
    fn cpd_json_shape() {
        let json = serde_json::to_value(Cpd::new(CpdForm::Offered, service())).unwrap();
        assert_eq!(json["FORM"], "OFFERED");
        let s = &json["LISP_MSX"];
        assert_eq!(s["MAPPING_SYSTEM_CONTACT"], "198.51.100.2");
        assert_eq!(s["MS_IDENTIFIER"], 1);
        assert_eq!(s["AS_NUMBER"], 65002);
        assert_eq!(s["SERVICES"]["BULK"], true);
        assert_eq!(s["SERVICES"]["DIRECT_MAP_REQUEST"], false);
        assert_eq!(s["EID_PREFIXES"][0], "203.0.113.0/26");
        assert_eq!(s["EID_PREFIXES"][1], "[7]2001:db8:1::/48");
        assert_eq!(s["RATE_LIMITS"]["MAP_REQUESTS_PER_SECOND"], 1000);
        assert!(s["RATE_LIMITS"].get("MAX_SUBSCRIPTIONS").is_none());
        assert_eq!(s["VALIDITY_SECONDS"], 86_400);
    }

    #[test]
    fn messages_round_trip() {
        for m in [quotation(), offer()] {
            let json = m.to_json().unwrap();
            assert_eq!(CpnpMessage::decode(&json).unwrap(), m);
        }
        let mut act = CpnpMessage::new(MethodCode::Activate, 9, 3, "c");
        act.provider_agreement_identifier = Some("p".into());
        act.nonce = Some(1);
        act.activation_schedule = Some(ActivationSchedule::Deactivate);
        let json = act.to_json().unwrap();
        assert!(String::from_utf8_lossy(&json).contains(r#""ACTIVATION_SCHEDULE":0"#));
        assert_eq!(CpnpMessage::decode(&json).unwrap(), act);
        act.activation_schedule = Some(ActivationSchedule::At(
            Rfc3339::new("2026-09-01T00:00:00Z").unwrap(),
        ));
        assert_eq!(CpnpMessage::decode(&act.to_json().unwrap()).unwrap(), act);
    }

    fn decode_err(json: &str) -> CpnpError {
        CpnpMessage::decode(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn validation_rules() {
        let base = r#""SEQUENCE_NUMBER":1,"TRANSACTION_ID":2,"CUSTOMER_AGREEMENT_IDENTIFIER":"c""#;
        // VERSION must be 1.
        assert!(matches!(
            decode_err(&format!(
                r#"{{"VERSION":2,"METHOD_CODE":2,{base},"PROVIDER_AGREEMENT_IDENTIFIER":"p"}}"#
            )),
            CpnpError::Invalid {
                field: "VERSION",
                ..
            }
        ));
        // PROVIDER_AGREEMENT_IDENTIFIER missing in PROCESSING.
        assert!(matches!(
            decode_err(&format!(r#"{{"VERSION":1,"METHOD_CODE":2,{base}}}"#)),
            CpnpError::Invalid {
                field: "PROVIDER_AGREEMENT_IDENTIFIER",
                ..
            }
        ));
        // ... but not needed in CANCEL.
        assert!(
            CpnpMessage::decode(format!(r#"{{"VERSION":1,"METHOD_CODE":7,{base}}}"#).as_bytes())
                .is_ok()
        );
        // NONCE required in ACCEPT, DECLINE, WITHDRAW, UPDATE, ACTIVATE.
        for code in [4, 5, 8, 9, 11] {
            assert!(matches!(
                decode_err(&format!(
                    r#"{{"VERSION":1,"METHOD_CODE":{code},{base},"PROVIDER_AGREEMENT_IDENTIFIER":"p"}}"#
                )),
                CpnpError::Invalid { field: "NONCE", .. }
            ));
        }
        // STATUS_CODE required in FAIL, refused elsewhere.
        assert!(matches!(
            decode_err(&format!(
                r#"{{"VERSION":1,"METHOD_CODE":10,{base},"PROVIDER_AGREEMENT_IDENTIFIER":"p"}}"#
            )),
            CpnpError::Invalid {
                field: "STATUS_CODE",
                ..
            }
        ));
        assert!(matches!(
            decode_err(&format!(
                r#"{{"VERSION":1,"METHOD_CODE":6,{base},"PROVIDER_AGREEMENT_IDENTIFIER":"p","STATUS_CODE":1}}"#
            )),
            CpnpError::Invalid {
                field: "STATUS_CODE",
                ..
            }
        ));
        // Unknown fields, unknown codes, bad dates are JSON errors.
        assert!(matches!(
            decode_err(&format!(
                r#"{{"VERSION":1,"METHOD_CODE":7,{base},"EXTRA":1}}"#
            )),
            CpnpError::Json(_)
        ));
        assert!(matches!(
            decode_err(&format!(r#"{{"VERSION":1,"METHOD_CODE":12,{base}}}"#)),
            CpnpError::Json(_)
        ));
        assert!(matches!(
            decode_err(&format!(
                r#"{{"VERSION":1,"METHOD_CODE":7,{base},"EXPECTED_RESPONSE_TIME":"2026-02-30T00:00:00Z"}}"#
            )),
            CpnpError::Json(_)
        ));
        // QUOTATION without a CPD, or with the wrong form.
        assert!(matches!(
            decode_err(&format!(r#"{{"VERSION":1,"METHOD_CODE":1,{base}}}"#)),
            CpnpError::Invalid { field: "CPD", .. }
        ));
        let mut q = quotation();
        q.cpd = Some(Cpd::new(CpdForm::Agreed, service()));
        assert!(q.to_json().is_err());
        q.cpd = Some(Cpd {
            form: CpdForm::Empty,
            lisp_msx: Some(service()),
        });
        assert!(q.validate().is_err());
        // Bad EID prefix text.
        let mut json: serde_json::Value =
            serde_json::from_slice(&quotation().to_json().unwrap()).unwrap();
        json["CPD"]["LISP_MSX"]["EID_PREFIXES"][0] = "192.0.2.0/33".into();
        assert!(matches!(
            CpnpMessage::decode(json.to_string().as_bytes()),
            Err(CpnpError::Json(_))
        ));
        // Empty identifier.
        let mut q = quotation();
        q.customer_agreement_identifier.clear();
        assert!(q.validate().is_err());
        // Not JSON at all.
        assert!(matches!(
            CpnpMessage::decode(b"\xff\x00"),
            Err(CpnpError::Json(_))
        ));
    }

    #[test]
    fn eid_prefix_without_text_form_is_an_encode_error() {
        let mut q = quotation();
        if let Some(Cpd {
            lisp_msx: Some(s), ..
        }) = &mut q.cpd
        {
            s.eid_prefixes[0].addr.asn = Some(65001);
        }
        assert!(matches!(q.to_json(), Err(CpnpError::Json(_))));
    }

    #[test]
    fn dates() {
        for ok in [
            "2026-08-01T12:00:00Z",
            "2024-02-29T23:59:60Z",
            "1985-04-12T23:20:50.52Z",
            "1996-12-19T16:39:57-08:00",
            "1990-12-31t15:59:60z",
        ] {
            assert!(Rfc3339::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-08-01 12:00:00Z",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-08-01T24:00:00Z",
            "2026-08-01T12:00:00",
            "2026-08-01T12:00:00.Z",
            "2026-08-01T12:00:00+0200",
            "Thu, 01 Aug 2026 12:00:00 GMT",
            "",
        ] {
            assert!(Rfc3339::new(bad).is_err(), "{bad}");
        }
        assert_eq!(Rfc3339::new("1970-01-01T00:00:00Z").unwrap().to_unix(), 0);
        assert_eq!(
            Rfc3339::new("1996-12-19T16:39:57-08:00").unwrap().to_unix(),
            851_042_397
        );
        let d = Rfc3339::from_unix(1_785_585_600).unwrap();
        assert_eq!(d.as_str(), "2026-08-01T12:00:00Z");
        assert_eq!(d.to_unix(), 1_785_585_600);
        assert_eq!(
            Rfc3339::from_unix(-1).unwrap().as_str(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(Rfc3339::from_unix(i64::MAX), None);
        assert_eq!(Rfc3339::from_unix(i64::MIN), None);
        let last = Rfc3339::new("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(Rfc3339::from_unix(last.to_unix()), Some(last));
    }

    #[test]
    fn frames_without_psk() {
        let m = offer();
        let f = encode_frame(&m, None).unwrap();
        let len = u32::from_be_bytes(f[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, f.len());
        for cut in 0..f.len() {
            assert_eq!(decode_frame(&f[..cut], None).unwrap(), None, "cut {cut}");
        }
        let mut stream = f.clone();
        stream.extend_from_slice(&encode_frame(&quotation(), None).unwrap());
        let (d, used) = decode_frame(&stream, None).unwrap().unwrap();
        assert_eq!((d, used), (m, f.len()));
        assert_eq!(
            decode_frame(&stream[used..], None).unwrap().unwrap().0,
            quotation()
        );
    }

    #[test]
    fn frames_with_psk() {
        let key = b"lab pre-shared key";
        let m = quotation();
        let f = encode_frame(&m, Some(key)).unwrap();
        assert_eq!(f.len(), 4 + m.to_json().unwrap().len() + MAC_LEN);
        assert_eq!(decode_frame(&f[..f.len() - 1], Some(key)).unwrap(), None);
        assert_eq!(decode_frame(&f, Some(key)).unwrap(), Some((m, f.len())));
        // Wrong key, flipped JSON byte, flipped tag byte.
        assert_eq!(
            decode_frame(&f, Some(b"other")).unwrap_err(),
            CpnpError::BadMac
        );
        let mut g = f.clone();
        g[10] ^= 1;
        assert_eq!(decode_frame(&g, Some(key)).unwrap_err(), CpnpError::BadMac);
        let mut g = f.clone();
        let last = g.len() - 1;
        g[last] ^= 0x80;
        assert_eq!(decode_frame(&g, Some(key)).unwrap_err(), CpnpError::BadMac);
        // Known tag: HMAC-SHA-256 over length ‖ JSON, checked independently.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(&f[..f.len() - MAC_LEN]);
        assert_eq!(
            &f[f.len() - MAC_LEN..],
            mac.finalize().into_bytes().as_slice()
        );
    }

    #[test]
    fn frame_limits() {
        assert_eq!(
            decode_frame(&[0, 0, 0, 0], None).unwrap_err(),
            CpnpError::EmptyFrame
        );
        assert!(matches!(
            decode_frame(&[0, 1, 0, 1], None),
            Err(CpnpError::FrameTooLarge { len: 65537, .. })
        ));
        let mut big = quotation();
        if let Some(Cpd {
            lisp_msx: Some(s), ..
        }) = &mut big.cpd
        {
            s.eid_prefixes = vec!["192.0.2.0/24".parse().unwrap(); 5000];
        }
        assert!(matches!(
            encode_frame(&big, None),
            Err(CpnpError::FrameTooLarge { .. })
        ));
        // A frame whose JSON is garbage.
        assert!(matches!(
            decode_frame(&[0, 0, 0, 2, b'{', b'x'], None),
            Err(CpnpError::Json(_))
        ));
    }

    #[test]
    fn typical_flow() {
        use ClientState as C;
        use MethodCode::*;
        use ServerState as S;
        // QUOTATION → PROCESSING → OFFER → PROCESSING → ACCEPT → ACK (Figure 6).
        let flow = [Quotation, Processing, Offer, Processing, Accept, Ack];
        let mut c = C::AwaitingProcessing;
        let mut s = S::Idle;
        let mut cs = vec![];
        let mut ss = vec![];
        for m in flow {
            c = next_client(c, m).unwrap();
            s = next_server(s, m).unwrap();
            cs.push(c);
            ss.push(s);
        }
        assert_eq!(
            cs,
            [
                C::PqoSent,
                C::ServerProcessing,
                C::OfferReceived,
                C::OfferProcessing,
                C::AcceptSent,
                C::Completed
            ]
        );
        assert_eq!(
            ss,
            [
                S::PqoReceived,
                S::AwaitingProcessing,
                S::OfferProposed,
                S::ProcessingReceived,
                S::AcceptReceived,
                S::Completed
            ]
        );
        // UPDATE starts a new cycle; WITHDRAW ends the agreement.
        assert_eq!(next_client(C::Completed, Update), Ok(C::PqoSent));
        assert_eq!(next_server(S::Completed, Update), Ok(S::PqoReceived));
        assert_eq!(next_client(C::Completed, Withdraw), Ok(C::Cancelled));
        assert_eq!(next_server(S::Completed, Withdraw), Ok(S::Cancelled));
    }

    #[test]
    fn cancel_decline_fail_paths() {
        use ClientState as C;
        use MethodCode::*;
        use ServerState as S;
        assert_eq!(next_client(C::PqoSent, Cancel), Ok(C::Cancelled));
        assert_eq!(next_client(C::ServerProcessing, Fail), Ok(C::Cancelled));
        assert_eq!(next_client(C::OfferProcessing, Decline), Ok(C::Cancelled));
        assert_eq!(next_client(C::Cancelled, Ack), Ok(C::Cancelled));
        assert_eq!(next_server(S::PqoReceived, Cancel), Ok(S::Cancelled));
        assert_eq!(
            next_server(S::ProcessingReceived, Decline),
            Ok(S::Cancelled)
        );
        assert_eq!(next_server(S::AwaitingProcessing, Fail), Ok(S::Cancelled));
        // More time requested and granted.
        assert_eq!(
            next_client(C::ServerProcessing, Processing),
            Ok(C::ServerProcessing)
        );
        assert_eq!(
            next_client(C::ServerProcessing, Ack),
            Ok(C::ServerProcessing)
        );
        assert_eq!(
            next_server(S::AwaitingProcessing, Ack),
            Ok(S::AwaitingProcessing)
        );
        // Out-of-order messages are refused with the state named.
        let e = next_client(C::PqoSent, Accept).unwrap_err();
        assert_eq!((e.state, e.msg), ("PQOSent", Accept));
        assert!(e.to_string().contains("ACCEPT"));
        assert!(next_client(C::Cancelled, Offer).is_err());
        assert!(next_client(C::Created, Processing).is_err());
        assert!(next_server(S::Idle, Accept).is_err());
        assert!(next_server(S::Cancelled, Quotation).is_err());
        assert!(next_server(S::OfferProposed, Withdraw).is_err());
    }

    #[test]
    fn child_order_flow() {
        use MethodCode::*;
        use ServerState as S;
        let mut s = S::ChildCreated;
        for m in [Quotation, Processing, Offer, Processing, Accept, Ack] {
            s = next_server(s, m).unwrap();
        }
        assert_eq!(s, S::ChildCompleted);
        assert_eq!(
            next_server(S::ChildServerProcessing, Fail),
            Ok(S::Cancelled)
        );
        assert_eq!(next_server(S::ChildCompleted, Withdraw), Ok(S::Cancelled));
    }

    #[test]
    fn every_pair_is_total() {
        // No (state, message) pair panics; each is either a move or an error.
        let clients = [
            ClientState::Created,
            ClientState::AwaitingProcessing,
            ClientState::PqoSent,
            ClientState::ServerProcessing,
            ClientState::OfferReceived,
            ClientState::OfferProcessing,
            ClientState::AcceptSent,
            ClientState::Completed,
            ClientState::Cancelled,
        ];
        let mut moves = 0;
        for &c in &clients {
            for &m in MethodCode::ALL {
                moves += usize::from(next_client(c, m).is_ok());
            }
        }
        assert!(moves > 20);
        assert_eq!(MethodCode::ALL.len(), 11);
        assert_eq!(FailStatus::ALL.len(), 8);
    }
}
