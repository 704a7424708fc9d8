//! The zebra API client (ZAPI version 6 as FRR 8.2 to 8.5 speak it).

pub mod client;
pub mod msg;
