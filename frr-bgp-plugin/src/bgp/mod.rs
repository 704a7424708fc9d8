//! The BGP speaker, hand-written (see README, "Why not netgauze"): message
//! codec, RFC 7606 UPDATE handling, FSM, TCP helpers.

pub mod fsm;
pub mod io;
pub mod msg;
pub mod prefix;
pub mod update;
