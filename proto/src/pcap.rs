//! A minimal pcap writer (LINKTYPE_RAW: packets start at the IP header), so
//! an independent decoder (tshark) can read what our encoders produce. Builds
//! bytes only; the caller writes the file.

use std::net::Ipv4Addr;

pub struct Pcap {
    bytes: Vec<u8>,
}

impl Default for Pcap {
    fn default() -> Self {
        Self::new()
    }
}

impl Pcap {
    pub fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
        Pcap { bytes }
    }

    pub fn packet(&mut self, ip: &[u8]) {
        let n = self.bytes.len() as u32;
        self.bytes
            .extend_from_slice(&1_700_000_000u32.to_le_bytes());
        self.bytes.extend_from_slice(&n.to_le_bytes()); // distinct microseconds
        self.bytes
            .extend_from_slice(&(ip.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(ip.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(ip);
    }

    /// IPv4 + UDP around `payload`.
    pub fn udp(&mut self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) {
        let mut udp = Vec::new();
        udp.extend_from_slice(&sport.to_be_bytes());
        udp.extend_from_slice(&dport.to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        self.ipv4(src, dst, 17, &udp);
    }

    /// IPv4 + a single TCP segment (PSH/ACK) around `payload`.
    pub fn tcp(&mut self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&sport.to_be_bytes());
        tcp.extend_from_slice(&dport.to_be_bytes());
        tcp.extend_from_slice(&1u32.to_be_bytes());
        tcp.extend_from_slice(&1u32.to_be_bytes());
        tcp.extend_from_slice(&[0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        self.ipv4(src, dst, 6, &tcp);
    }

    pub fn ipv4(&mut self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) {
        let total = (20 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        let c = !(((sum & 0xFFFF) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(payload);
        self.packet(&ip);
    }

    /// The capture file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
