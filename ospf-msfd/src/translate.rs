//! The MSFD TLV ⇄ the agent's API: what we originate from the agent's local
//! functions, and what we report to the agent from other routers' LSAs.

use std::net::{IpAddr, Ipv4Addr};

use lisp_msx_proto::api;
use lisp_msx_proto::ospf::msfd::{MsStatus, MsfStatus, MsfType, Msfd};

/// The MSFD TLV for the agent's local functions; None when there is nothing
/// to advertise (no MS/MR function, or no locator).
pub fn msfd_from_local(lf: &api::LocalFunctions) -> Option<Msfd> {
    let function = match (lf.map_server, lf.map_resolver) {
        (true, true) => MsfType::Both,
        (true, false) => MsfType::MapServer,
        (false, true) => MsfType::MapResolver,
        (false, false) => return None,
    };
    let locators: Vec<IpAddr> = lf.locators.iter().filter_map(|l| l.parse().ok()).collect();
    if locators.is_empty() {
        return None;
    }
    Some(Msfd {
        function,
        locators,
        description: (!lf.description.is_empty()).then(|| lf.description.clone()),
        epoch: Some(lf.epoch),
        unavailability_timer: lf
            .has_unavailability_timer
            .then_some(lf.unavailability_timer_secs),
        reboot_timer: lf.has_reboot_timer.then_some(lf.reboot_timer_secs),
        diagnosis: lf.diagnosis,
        ms_status: match lf.database_status.as_str() {
            "reset" => Some(MsStatus::Reset),
            "partial" => Some(MsStatus::Partial),
            "synchronized" => Some(MsStatus::Synchronized),
            _ => None,
        },
        msf_status: Some(if lf.status == "disabled" {
            MsfStatus::Disabled
        } else {
            MsfStatus::Enabled
        }),
        capabilities: (lf.capabilities != 0).then_some(lf.capabilities),
        unknown: Vec::new(),
    })
}

/// One MSFD TLV of another router, as the agent's discovery sees it.
pub fn system_from_msfd(m: &Msfd, key: String, adv_router: Ipv4Addr) -> api::DiscoveredSystem {
    api::DiscoveredSystem {
        key,
        kind: match m.function {
            MsfType::MapServer => "ms",
            MsfType::MapResolver => "mr",
            MsfType::Both => "ms+mr",
        }
        .into(),
        locators: m.locators.iter().map(|l| l.to_string()).collect(),
        status: match m.msf_status {
            Some(MsfStatus::Disabled) => "disabled",
            _ => "enabled",
        }
        .into(),
        description: m.description.clone().unwrap_or_default(),
        epoch: m.epoch.unwrap_or(0),
        has_epoch: m.epoch.is_some(),
        unavailability_timer_secs: m.unavailability_timer.unwrap_or(0),
        has_unavailability_timer: m.unavailability_timer.is_some(),
        reboot_timer_secs: m.reboot_timer.unwrap_or(0),
        has_reboot_timer: m.reboot_timer.is_some(),
        diagnosis: m.diagnosis,
        database_status: match m.ms_status {
            Some(MsStatus::Reset) => "reset",
            Some(MsStatus::Partial) => "partial",
            Some(MsStatus::Synchronized) => "synchronized",
            None => "",
        }
        .into(),
        capabilities: m.capabilities.unwrap_or(0),
        advertiser: adv_router.to_string(),
        reachable: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_functions_round_trip_through_the_tlv() {
        let lf = api::LocalFunctions {
            map_server: true,
            map_resolver: true,
            locators: vec!["192.0.2.3".into(), "2001:db8::3".into()],
            status: "disabled".into(),
            description: "r3".into(),
            epoch: 4,
            unavailability_timer_secs: 30,
            has_unavailability_timer: true,
            database_status: "synchronized".into(),
            capabilities: 0xE000_0000,
            ..Default::default()
        };
        let m = msfd_from_local(&lf).unwrap();
        let mut b = Vec::new();
        m.encode(&mut b).unwrap();
        let back = Msfd::decode(&b).unwrap();
        let s = system_from_msfd(&back, "k".into(), "192.0.2.3".parse().unwrap());
        assert_eq!(s.kind, "ms+mr");
        assert_eq!(s.status, "disabled");
        assert_eq!(s.locators, lf.locators);
        assert!(s.has_unavailability_timer && s.unavailability_timer_secs == 30);
        assert_eq!(s.capabilities, 0xE000_0000);
        assert_eq!(s.database_status, "synchronized");
    }

    #[test]
    fn nothing_to_advertise() {
        assert!(msfd_from_local(&api::LocalFunctions::default()).is_none());
        let lf = api::LocalFunctions {
            map_resolver: true,
            ..Default::default()
        };
        assert!(msfd_from_local(&lf).is_none(), "no locator, no TLV");
    }
}
