//! Certificate (and key) expiry as a gauge, `hes_certificate_expiry_timestamp_seconds{kind}`:
//! Unix seconds of the end of validity, so that a rule alerts ahead of it
//! (`… - time() < 14 * 86400`). Only the validity is read out of the certificate: a few DER
//! headers, no verification (the TLS stack does that when it loads the certificate).

use base64::Engine as _;

pub const EXPIRY: &str = "hes_certificate_expiry_timestamp_seconds";

/// Records the end of validity of the first certificate in the PEM file at `path` under
/// `kind` (a fixed name: `api_tls`, …). Returns it, or why not.
pub fn watch_pem(kind: &'static str, path: &std::path::Path) -> Result<i64, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let der = first_certificate(&pem).ok_or("no PEM certificate")?;
    let not_after = not_after(&der).ok_or("no validity in the certificate")?;
    record(kind, not_after);
    Ok(not_after)
}

/// Records an expiry known otherwise (a key with a lifetime).
pub fn record(kind: &'static str, not_after: i64) {
    // Usually before any role has installed the recorder: recorded into none, it would be lost.
    crate::install();
    ::metrics::describe_gauge!(
        EXPIRY,
        ::metrics::Unit::Seconds,
        "End of validity of a certificate or key, Unix seconds."
    );
    // Unix seconds: exact in an f64.
    #[allow(clippy::cast_precision_loss)]
    ::metrics::gauge!(EXPIRY, "kind" => kind).set(not_after as f64);
}

fn first_certificate(pem: &str) -> Option<Vec<u8>> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = pem.find(begin)? + begin.len();
    let rest = pem.get(start..)?;
    let end = rest.find("-----END CERTIFICATE-----")?;
    let b64: String = rest
        .get(..end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// One DER element: its tag, its content, and what follows it.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(n)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, rest)
    };
    let (content, after) = rest.split_at_checked(len)?;
    Some((tag, content, after))
}

/// notAfter of an X.509 certificate, Unix seconds.
fn not_after(der: &[u8]) -> Option<i64> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version (optional), serial number, signature algorithm, issuer, then validity.
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (0x30, validity, _) = tlv(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    match tag {
        0x17 => {
            let yy: i64 = text.get(0..2)?.parse().ok()?;
            let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
            unix_of(year, text.get(2..)?)
        }
        0x18 => unix_of(text.get(0..4)?.parse().ok()?, text.get(4..)?),
        _ => None,
    }
}

/// `MMDDHHMMSSZ` of `year` as Unix seconds (UTC).
fn unix_of(year: i64, rest: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
    let (month, day, h, m, s) = (n(0..2)?, n(2..4)?, n(4..6)?, n(6..8)?, n(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    #[test]
    fn reads_not_after_in_both_time_forms() {
        let validity = |nb: Vec<u8>, na: Vec<u8>| der(0x30, &[nb, na].concat());
        for (na, want) in [
            (der(0x17, b"300101000000Z"), 1_893_456_000),
            (der(0x18, b"20991231235959Z"), 4_102_444_799),
        ] {
            let tbs = der(
                0x30,
                &[
                    der(0xa0, &der(0x02, &[2])),
                    der(0x02, &[0x01; 200]),
                    der(0x30, &der(0x06, &[1, 2, 3])),
                    der(0x30, &[]),
                    validity(der(0x17, b"200101000000Z"), na),
                    der(0x30, &[]),
                ]
                .concat(),
            );
            let cert = der(0x30, &[tbs, der(0x30, &[]), der(0x03, &[0])].concat());
            assert_eq!(not_after(&cert), Some(want));
            let pem = format!(
                "junk\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::engine::general_purpose::STANDARD.encode(&cert)
            );
            assert_eq!(first_certificate(&pem).unwrap(), cert);
        }
        assert_eq!(not_after(&[0x30, 0x05, 0x30]), None);
    }
}
