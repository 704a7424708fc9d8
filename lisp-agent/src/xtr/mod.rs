//! xTR control plane: the ETR registers its database and answers requests;
//! the ITR keeps the map-cache and resolves through the Map-Resolvers.

pub mod etr;
pub mod itr;

use lisp_msx_proto::lisp::Action;

/// Parses a negative-entry action name as used in configuration and shows.
pub fn parse_action(s: &str) -> Option<Action> {
    Some(match s {
        "no-action" => Action::NO_ACTION,
        "natively-forward" => Action::NATIVELY_FORWARD,
        "send-map-request" => Action::SEND_MAP_REQUEST,
        "drop" => Action::DROP_NO_REASON,
        _ => return None,
    })
}
