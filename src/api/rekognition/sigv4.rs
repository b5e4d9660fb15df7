//! AWS Signature Version 4, checked from the server's side: the canonical request is rebuilt from
//! the headers the client says it signed, hashed into the string to sign, and signed with the key
//! derived from the caller's secret (aws-sigv4's derivation, the one the SDK signs with); the
//! signatures are compared in constant time. The request's date must be within the allowed clock
//! skew, and host and x-amz-date must be among the signed headers.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Uri};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::AccessKeySetting;

/// The only algorithm SigV4 signs with here.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The service name a credential must be scoped to.
pub const SERVICE: &str = "rekognition";

/// The access keys whose signatures are accepted.
#[derive(Clone, Debug, Default)]
pub struct AccessKeys(HashMap<String, SecretString>);

impl AccessKeys {
    /// The keys of the settings; a later key with the same id replaces an earlier one.
    pub fn new(keys: &[AccessKeySetting]) -> Self {
        Self(
            keys.iter()
                .map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
                .collect(),
        )
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who signed a request, as its credential scope says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The access key id.
    pub access_key_id: String,
    /// The region the request was signed for.
    pub region: String,
}

/// Why a request's signature was refused; each maps to the error AWS answers with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No Authorization header (`MissingAuthenticationTokenException`).
    #[error("Missing Authentication Token")]
    Missing,
    /// The Authorization header is malformed or lacks a part (`IncompleteSignatureException`).
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not one of ours (`UnrecognizedClientException`).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The signature, its scope or its date is wrong (`InvalidSignatureException`).
    #[error("{0}")]
    Invalid(String),
}

/// What [`verify`] reads of a request.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The target URI (path and query as sent).
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// Checks a request's SigV4 signature against `keys` at `now`, allowing `max_skew` between the
/// request's date and `now`.
pub fn verify(
    req: &SignedRequest<'_>,
    keys: &AccessKeys,
    now: SystemTime,
    max_skew: Duration,
) -> Result<Caller, AuthError> {
    let header = req
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Incomplete("The Authorization header is not ASCII.".to_owned()))?;
    let auth = Authorization::parse(header)?;
    let amz_date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AuthError::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header."
                    .to_owned(),
            )
        })?;
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(AuthError::Incomplete(format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let secret = keys
        .0
        .get(auth.access_key_id)
        .ok_or(AuthError::UnknownKey)?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    check_skew(signed_at, now, max_skew)?;
    if !amz_date.starts_with(auth.date) {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..8.min(amz_date.len())]
        )));
    }
    if auth.service != SERVICE {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    let payload_hash = hex::encode(Sha256::digest(req.body));
    if let Some(claimed) = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        if claimed != payload_hash && claimed != "UNSIGNED-PAYLOAD" {
            return Err(AuthError::Invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned(),
            ));
        }
    }
    let canonical = canonical_request(req, &auth.signed_headers, &payload_hash)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = aws_sigv4::sign::v4::generate_signing_key(
        secret.expose_secret(),
        signed_at,
        auth.region,
        auth.service,
    );
    let expected = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    if expected.as_bytes().ct_eq(auth.signature.as_bytes()).into() {
        Ok(Caller {
            access_key_id: auth.access_key_id.to_owned(),
            region: auth.region.to_owned(),
        })
    } else {
        Err(AuthError::Invalid(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .to_owned(),
        ))
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
/// header.
#[derive(Debug)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: &'a str) -> Result<Self, AuthError> {
        let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
        if algorithm != ALGORITHM {
            return Err(AuthError::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'"
            )));
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim) {
            match part.split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let missing = |name: &str| {
            AuthError::Incomplete(format!(
                "Authorization header requires '{name}' parameter. Authorization={header}"
            ))
        };
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| missing("Signature"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = scope.as_slice() else {
            return Err(AuthError::Incomplete(format!(
                "Credential should have 5 parts (ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/\
                 aws4_request), not {}: '{credential}'",
                scope.len()
            )));
        };
        if *terminator != "aws4_request" {
            return Err(AuthError::Invalid(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not \
                 '{terminator}'."
            )));
        }
        Ok(Self {
            access_key_id,
            date,
            region,
            service,
            signed_headers: signed.split(';').collect(),
            signature,
        })
    }
}

/// The canonical request: method, canonical URI, canonical query, the signed headers with their
/// values, the list of signed headers and the payload's hash, one per line.
fn canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[&str],
    payload_hash: &str,
) -> Result<String, AuthError> {
    let mut out = String::with_capacity(512);
    out.push_str(req.method.as_str());
    out.push('\n');
    // Services other than S3 encode the path as sent once more.
    out.push_str(&encode(req.uri.path(), false));
    out.push('\n');
    out.push_str(&canonical_query(req.uri.query().unwrap_or("")));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                v.to_str()
                    .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                    .map_err(|_| {
                        AuthError::Invalid(format!("The signed header '{name}' is not ASCII."))
                    })
            })
            .collect::<Result<_, _>>()?;
        if values.is_empty() {
            return Err(AuthError::Invalid(format!(
                "The signed header '{name}' is not in the request."
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// The query's parameters decoded, encoded the SigV4 way and sorted by name, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), true), encode(&decode(v), true))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes every byte but the unreserved ones (and `/` unless `slash` is set), upper-case
/// hex, as SigV4 asks.
fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !slash)
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_skew(signed_at: SystemTime, now: SystemTime, max_skew: Duration) -> Result<(), AuthError> {
    let minutes = max_skew.as_secs() / 60;
    if signed_at + max_skew < now {
        return Err(AuthError::Invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
            format_amz_date(signed_at),
            format_amz_date(now - max_skew),
            format_amz_date(now)
        )));
    }
    if signed_at > now + max_skew {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
            format_amz_date(signed_at),
            format_amz_date(now + max_skew),
            format_amz_date(now)
        )));
    }
    Ok(())
}

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    // `parse` takes a sign: only digits are a date's.
    let digits = |r: std::ops::Range<usize>| -> Option<&str> {
        let part = s.get(r)?;
        part.bytes().all(|b| b.is_ascii_digit()).then_some(part)
    };
    let num = |r: std::ops::Range<usize>| -> Option<u8> { digits(r)?.parse().ok() };
    let year: i32 = digits(0..4)?.parse().ok()?;
    let month = time::Month::try_from(num(4..6)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, num(6..8)?).ok()?;
    let at = time::Time::from_hms(num(9..11)?, num(11..13)?, num(13..15)?).ok()?;
    let secs = time::PrimitiveDateTime::new(date, at)
        .assume_utc()
        .unix_timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Formats `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip_and_impossible_ones_are_refused() {
        for text in ["20150830T123600Z", "20240229T235959Z", "19700101T000000Z"] {
            let at = parse_amz_date(text).unwrap();
            assert_eq!(format_amz_date(at), text);
        }
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        for bad in [
            "20230229T000000Z",
            "20151301T000000Z",
            "20150830T246000Z",
            "+0150830T123600Z",
            "2015083OT123600Z",
            "20150830 123600Z",
            "20150830T123600",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    /// The example of AWS's SigV4 test suite (`get-vanilla`), whose signature AWS publishes.
    #[test]
    fn the_published_example_verifies() {
        let keys = AccessKeys::new(&[AccessKeySetting {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: SecretString::from(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            ),
        }]);
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .unwrap(),
        );
        let uri: Uri = "/".parse().unwrap();
        let req = SignedRequest {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
            body: b"",
        };
        let at = parse_amz_date("20150830T123600Z").unwrap();
        // The example is scoped to the service `service`, which this endpoint refuses, after the
        // signature's inputs have been checked; the canonical request is what the suite gives.
        let err = verify(&req, &keys, at, Duration::from_secs(900)).unwrap_err();
        assert_eq!(
            err,
            AuthError::Invalid(
                "Credential should be scoped to correct service: 'rekognition'.".into()
            )
        );
        let canonical = canonical_request(
            &req,
            &["host", "x-amz-date"],
            &hex::encode(Sha256::digest(b"")),
        )
        .unwrap();
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let key = aws_sigv4::sign::v4::generate_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            at,
            "us-east-1",
            "service",
        );
        assert_eq!(
            aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes()),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn dates_round_trip_and_bad_ones_are_refused() {
        for s in ["20150830T123600Z", "20000229T000000Z", "19991231T235959Z"] {
            assert_eq!(format_amz_date(parse_amz_date(s).unwrap()), s);
        }
        for s in [
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "20150830T123600",
            "",
        ] {
            assert_eq!(parse_amz_date(s), None, "{s}");
        }
    }

    #[test]
    fn the_query_is_sorted_and_encoded() {
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
        assert_eq!(encode("/a b/", false), "/a%20b/");
        assert_eq!(encode("/a b/", true), "%2Fa%20b%2F");
    }
}
