//! Encode/decode speed of the hot control messages. Figures go to the README.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lisp_msx_proto::lisp::auth::AuthAlg;
use lisp_msx_proto::lisp::*;
use lisp_msx_proto::{Addr, EidPrefix};

fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
    Addr::v4(Ipv4Addr::new(a, b, c, d))
}

fn request() -> MapRequest {
    MapRequest::new(
        0x0102030405060708,
        EidPrefix::host(v4(203, 0, 113, 9)),
        v4(192, 0, 2, 1),
    )
}

fn reply() -> MapReply {
    let locators = (1..=4)
        .map(|i| Locator::new(v4(198, 51, 100, i), i, 25))
        .collect();
    MapReply::new(
        1,
        vec![EidRecord::new(
            EidPrefix::new(v4(203, 0, 113, 0), 26),
            1440,
            locators,
        )],
    )
}

fn register() -> MapRegister {
    let rec = EidRecord::new(
        EidPrefix::new(v4(192, 0, 2, 0), 26),
        1440,
        vec![Locator::new(v4(198, 51, 100, 10), 1, 100)],
    );
    MapRegister {
        flags: RegisterFlags {
            proxy_reply: true,
            want_map_notify: true,
            ..Default::default()
        },
        body: AuthenticatedBody {
            nonce: 7,
            key_id: 1,
            alg: AuthAlg::HMAC_SHA256_128,
            auth_data: vec![],
            records: vec![rec],
            xtr_site: None,
        },
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));

    let req = request();
    let mut req_bytes = Vec::new();
    req.encode(&mut req_bytes).unwrap();
    g.bench_function("map_request/decode", |b| {
        b.iter(|| MapRequest::decode(black_box(&req_bytes)).unwrap())
    });
    // How the daemons decode: into one reused value.
    let mut scratch = MapRequest::default();
    g.bench_function("map_request/decode_into", |b| {
        b.iter(|| {
            scratch.decode_into(black_box(&req_bytes)).unwrap();
            black_box(scratch.nonce)
        })
    });
    let mut out = Vec::with_capacity(256);
    g.bench_function("map_request/encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&req).encode(&mut out).unwrap();
            black_box(out.len())
        })
    });

    let rep = reply();
    let rep_bytes = LispMessage::MapReply(rep.clone()).to_bytes().unwrap();
    g.bench_function("map_reply_1rec_4loc/decode", |b| {
        b.iter(|| LispMessage::decode(black_box(&rep_bytes)).unwrap())
    });
    g.bench_function("map_reply_1rec_4loc/encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&rep).encode(&mut out).unwrap();
            black_box(out.len())
        })
    });

    let reg = register();
    let reg_bytes = reg.encode_signed(b"key").unwrap();
    g.bench_function("map_register/decode", |b| {
        b.iter(|| LispMessage::decode(black_box(&reg_bytes)).unwrap())
    });
    g.bench_function("map_register/encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&reg).encode(&mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("map_register/encode_signed_sha256", |b| {
        b.iter(|| black_box(&reg).encode_signed(b"key").unwrap())
    });
    g.bench_function("map_register/verify_sha256", |b| {
        b.iter(|| map_register::verify_packet(black_box(&reg_bytes), b"key").unwrap())
    });

    let ecm = Ecm::new(
        InnerHeader::new(
            "192.0.2.1".parse().unwrap(),
            "203.0.113.9".parse().unwrap(),
            40000,
            4342,
        ),
        LispMessage::MapRequest(req.clone()),
    );
    let mut ecm_bytes = Vec::new();
    ecm.encode(&mut ecm_bytes).unwrap();
    g.bench_function("ecm_map_request/decode_headers+inner", |b| {
        b.iter(|| {
            let (h, inner) = Ecm::decode_headers(black_box(&ecm_bytes)).unwrap();
            (h, MapRequest::decode(inner).unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
