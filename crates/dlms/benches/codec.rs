//! Encode and decode of a load-profile GET response (96 rows x 4 channels), plain and ciphered,
//! next to the raw AES-128-GCM speed of the same bytes: the codec should add little over the
//! crypto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dlms::security::{CipherKeys, SecurityContext};
use dlms::xdlms::{Apdu, GetDataResult, GetResponse, InvokeIdAndPriority};
use dlms::{Codec, Data, DateTime, SecurityLevel, SystemTitle};

const EK: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const AK: [u8; 16] = [0xD0; 16];
const SERVER: SystemTitle = SystemTitle([0x4D, 0x4D, 0x4D, 0, 0, 0xBC, 0x61, 0x4E]);
const CLIENT: SystemTitle = SystemTitle([0x4D, 0x4D, 0x4D, 0, 0, 0, 0, 1]);

fn profile_response() -> Apdu {
    let rows = (0..96)
        .map(|i| {
            let t = DateTime::from_unix(1_795_651_200 + 900 * i, 60, 0);
            Data::Structure(vec![
                Data::OctetString(t.to_octets()),
                Data::DoubleLongUnsigned(12_000_000 + 37 * i as u32),
                Data::DoubleLongUnsigned(1_200_000 + 3 * i as u32),
                Data::DoubleLongUnsigned(3_000_000 + 11 * i as u32),
            ])
        })
        .collect();
    Apdu::GetResponse(GetResponse::Normal {
        invoke: InvokeIdAndPriority::new(1, true, true),
        result: GetDataResult::Data(Data::Array(rows)),
    })
}

/// A client's ciphering state that has just associated with the server.
fn client_ctx() -> SecurityContext {
    let mut ctx = SecurityContext::new(SecurityLevel::AuthenticatedEncrypted, CLIENT, keys(), 1);
    ctx.peer_system_title = Some(SERVER);
    ctx
}

fn keys() -> CipherKeys {
    CipherKeys { ek: EK, ak: AK }
}

fn bench(c: &mut Criterion) {
    let apdu = profile_response();
    let plain = apdu.to_bytes();
    let mut g = c.benchmark_group("profile_96x4");
    g.throughput(Throughput::Bytes(plain.len() as u64));

    g.bench_function("encode", |b| {
        let mut out = Vec::with_capacity(plain.len());
        b.iter(|| {
            out.clear();
            apdu.encode(&mut out);
            std::hint::black_box(&out);
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| Apdu::decode_exact(std::hint::black_box(&plain)).unwrap())
    });

    // What a server sends: glo-get-response, authenticated and encrypted with suite 0.
    let mut server = SecurityContext::new(SecurityLevel::AuthenticatedEncrypted, SERVER, keys(), 1);
    let ciphered = server.protect(&plain, false).unwrap();

    g.bench_function("encode+encrypt", |b| {
        let mut ctx =
            SecurityContext::new(SecurityLevel::AuthenticatedEncrypted, SERVER, keys(), 1);
        b.iter(|| ctx.protect(&apdu.to_bytes(), false).unwrap())
    });
    g.bench_function("decrypt+decode", |b| {
        b.iter_batched(
            client_ctx,
            |mut ctx| {
                let p = ctx.unprotect(&ciphered).unwrap();
                Apdu::decode_exact(&p.apdu).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    // The collector's path: decrypt, check the response once, walk the rows in place.
    g.bench_function("decrypt+view", |b| {
        b.iter_batched(
            client_ctx,
            |mut ctx| {
                let p = ctx.unprotect(&ciphered).unwrap();
                let (_, result) = dlms::xdlms::get_response_normal_view(&p.apdu).unwrap();
                let rows = result.unwrap();
                let mut sum = 0i128;
                for row in rows.elements().unwrap() {
                    let mut cols = row.elements().unwrap();
                    let _time = cols.next().and_then(|c| c.as_octets());
                    sum += cols.filter_map(|c| c.as_i128()).sum::<i128>();
                }
                sum
            },
            BatchSize::SmallInput,
        )
    });
    // Single pass: decrypt, then every byte checked once while the values are taken out.
    g.bench_function("decrypt+cursor", |b| {
        b.iter_batched(
            client_ctx,
            |mut ctx| {
                let p = ctx.unprotect(&ciphered).unwrap();
                let (_, result) = dlms::xdlms::get_response_normal_cursor(&p.apdu).unwrap();
                let mut cursor = result.unwrap();
                let mut sum = 0i128;
                while let Some(item) = cursor.next_item().unwrap() {
                    if let dlms::axdr::Item::Value(v) = item {
                        sum += v.as_i128().unwrap_or(0);
                    }
                }
                sum
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("view", |b| {
        b.iter(|| {
            let (_, result) =
                dlms::xdlms::get_response_normal_view(std::hint::black_box(&plain)).unwrap();
            let mut sum = 0i128;
            for row in result.unwrap().elements().unwrap() {
                sum += row
                    .elements()
                    .unwrap()
                    .filter_map(|c| c.as_i128())
                    .sum::<i128>();
            }
            sum
        })
    });
    // The floor: AES-128-GCM alone over the same plaintext, through the same primitive.
    g.bench_function("raw_aes128gcm_decrypt", |b| {
        let protected = &ciphered[ciphered.len() - (plain.len() + 5 + 12)..];
        b.iter(|| {
            dlms::security::decrypt(&SERVER, &EK, &AK, std::hint::black_box(protected)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
