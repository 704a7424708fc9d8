//! Map-Bulk transfer benchmark: 1,000,000 mappings copied over loopback with
//! the real service and client (paging, framing, TCP, decoding). The table is
//! synthetic (IPv6 /64s under 2001:db8::/32, one or two locators in the
//! documentation ranges); a stand-in for the reactor hands it to the service.
//! Run: cargo bench -p lisp-agent --bench bulk_transfer

use std::net::IpAddr;
use std::time::Instant;

use lisp_agent::api::{Request, Response};
use lisp_agent::control::handle::{self, Input};
use lisp_agent::msx::bulk;
use lisp_msx_proto::lisp::{EidRecord, Locator};
use lisp_msx_proto::msx::ExtCodepoints;
use lisp_msx_proto::{Addr, EidPrefix};

fn table(n: usize) -> Vec<EidRecord> {
    (0..n)
        .map(|i| {
            let p = (0x2001_0db8u128 << 96) | ((i as u128) << 64);
            let mut locs = vec![Locator::new(
                Addr::V4(0xC000_0200 | (i as u32 & 0xFF)),
                1,
                50,
            )];
            if i % 2 == 0 {
                locs.push(Locator::new(
                    Addr::V4(0xC633_6400 | (i as u32 & 0xFF)),
                    2,
                    50,
                ));
            }
            EidRecord::new(EidPrefix::new(Addr::V6(p), 64), 1440, locs)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BULK_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let records = table(n);
    let bytes: usize = records.iter().map(EidRecord::wire_len).sum();
    let (h, inbox) = handle::channel()?;
    let served = records.clone();
    // The reactor's part: answer the service's request for the records.
    std::thread::spawn(move || {
        while let Ok(input) = inbox.rx.recv() {
            if let Input::Call(call) = input
                && let Request::BulkRecords { .. } = call.request
            {
                let _ = call.reply.send(Response::BulkRecords(Ok(served.clone())));
            }
        }
    });
    let server: IpAddr = "127.99.0.1".parse()?;
    let client: IpAddr = "127.99.0.2".parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (_stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(bulk::serve(h, server, ExtCodepoints::default(), async move {
            let _ = stop_rx.await;
        }));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for run in 1..=3 {
            let t = Instant::now();
            let got = bulk::fetch(client, server, Vec::new(), ExtCodepoints::default()).await?;
            let secs = t.elapsed().as_secs_f64();
            anyhow::ensure!(got.len() == n && got[n - 1] == records[n - 1], "copy differs");
            let frames = n.div_ceil(255);
            println!(
                "run {run}: {n} mappings in {secs:.3} s ({:.0} mappings/s), {:.1} MB of records + {} frames",
                n as f64 / secs,
                bytes as f64 / 1e6,
                frames
            );
        }
        anyhow::Ok(())
    })
}
