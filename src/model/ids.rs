//! Identifier newtypes with Rekognition's character rules and lengths, so that an id that the face
//! service would refuse is refused here too, with a message that says why.

use std::fmt;

use super::ParseError;

fn check_chars(
    what: &'static str,
    s: &str,
    max: usize,
    allowed: fn(char) -> bool,
    rule: &str,
) -> Result<(), ParseError> {
    if s.is_empty() || s.len() > max {
        return Err(ParseError::new(
            what,
            s,
            format!("must be 1 to {max} characters long"),
        ));
    }
    if let Some(bad) = s.chars().find(|c| !allowed(*c)) {
        return Err(ParseError::new(
            what,
            s,
            format!("character {bad:?} is not allowed ({rule})"),
        ));
    }
    Ok(())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The identifier as the face service and the stores spell it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
    };
}

string_id!(
    /// A face's identifier in a collection: a lowercase UUID, as Rekognition and the local engine
    /// assign them.
    FaceId
);
string_id!(
    /// A face collection's identifier: 1 to 255 of `[a-zA-Z0-9_.-]`.
    CollectionId
);
string_id!(
    /// The caller's name for an image: 1 to 255 of `[a-zA-Z0-9_.:-]`, usually derived from a file name.
    ExternalImageId
);
string_id!(
    /// An image's identity: one upload. For images facegraph read itself, a SHA-256 (64 lowercase
    /// hex digits) of the bytes' hash and the external image id ([`ImageId::of_upload`]), so that the
    /// same bytes under another external image id are another image; for saved Rekognition
    /// responses, the service's image id (a UUID).
    ImageId
);
string_id!(
    /// The SHA-256 of an image's bytes, 64 lowercase hex digits: a property that several uploads
    /// (images) share when they carry the same bytes.
    ContentHash
);
string_id!(
    /// The business entity behind an image, such as a customer id: 1 to 255 printable characters.
    SubjectId
);

impl FaceId {
    /// Parses a face id: a lowercase UUID.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if is_uuid(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "face id",
                s,
                "must be a lowercase UUID such as 11111111-2222-3333-4444-555555555555",
            ))
        }
    }
}

impl FaceId {
    /// The UUID as a 128-bit number; its order is the order of the ids as strings, since every id is
    /// lowercase hex in the same layout.
    pub fn to_u128(&self) -> u128 {
        self.0.bytes().filter(|b| *b != b'-').fold(0u128, |acc, b| {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                _ => b - b'a' + 10,
            };
            (acc << 4) | u128::from(digit)
        })
    }
}

impl CollectionId {
    /// Parses a collection id with Rekognition's rules.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        check_chars(
            "collection id",
            s,
            255,
            |c| c.is_ascii_alphanumeric() || "_.-".contains(c),
            "allowed: a-z A-Z 0-9 _ . -",
        )?;
        Ok(Self(s.to_owned()))
    }
}

impl ExternalImageId {
    /// Parses an external image id with Rekognition's rules.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        check_chars(
            "external image id",
            s,
            255,
            |c| c.is_ascii_alphanumeric() || "_.:-".contains(c),
            "allowed: a-z A-Z 0-9 _ . : -",
        )?;
        Ok(Self(s.to_owned()))
    }

    /// Derives an external image id from a file name the way Rekognition users do: every character
    /// that the id may not hold becomes `_`, and the result is cut to 255 characters.
    pub fn from_file_name(name: &str) -> Result<Self, ParseError> {
        let cleaned: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.:-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(255)
            .collect();
        Self::parse(&cleaned)
    }
}

impl ImageId {
    /// Parses an image id: a lowercase UUID or a 64-digit lowercase SHA-256 hex string.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let is_sha = s.len() == 64
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if is_uuid(s) || is_sha {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "image id",
                s,
                "must be a lowercase UUID or a SHA-256 in lowercase hex",
            ))
        }
    }

    /// The image id of some bytes: their SHA-256.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(hex::encode(sha2::Sha256::digest(bytes)))
    }

    /// The id of one upload: these bytes under this external image id. The same bytes under the
    /// same external image id are the same upload (a duplicate); under another id, another one.
    pub fn of_upload(content: &ContentHash, external: Option<&ExternalImageId>) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"facegraph upload v1\n");
        h.update(content.as_str().as_bytes());
        h.update(b"\n");
        if let Some(e) = external {
            h.update(e.as_str().as_bytes());
        }
        Self(hex::encode(h.finalize()))
    }

    /// Whether this id is a 64-digit SHA-256, as facegraph's own image ids (and, before uploads had
    /// their own ids, the bytes' hash) are, rather than an engine's UUID.
    pub fn is_sha256(&self) -> bool {
        self.0.len() == 64
    }
}

impl ContentHash {
    /// Parses 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() == 64
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "content hash",
                s,
                "must be a SHA-256 in 64 lowercase hex digits",
            ))
        }
    }

    /// The SHA-256 of some bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(hex::encode(sha2::Sha256::digest(bytes)))
    }
}

impl SubjectId {
    /// Parses a subject id: 1 to 255 characters, no control characters, no surrounding spaces.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        check_chars(
            "subject id",
            s,
            255,
            |c| !c.is_control(),
            "no control characters",
        )?;
        if s.trim() != s {
            return Err(ParseError::new(
                "subject id",
                s,
                "must not start or end with white space",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_ids_are_lowercase_uuids() {
        assert!(FaceId::parse("0b683aed-a0f1-48b2-9b5e-139e9cc2a757").is_ok());
        assert!(FaceId::parse("0B683AED-A0F1-48B2-9B5E-139E9CC2A757").is_err());
        assert!(FaceId::parse("0b683aed-a0f1-48b2-9b5e-139e9cc2a75").is_err());
        assert!(FaceId::parse("").is_err());
    }

    #[test]
    fn face_id_numbers_sort_like_the_strings() {
        let a = FaceId::parse("0b683aed-a0f1-48b2-9b5e-139e9cc2a757").unwrap();
        let b = FaceId::parse("0b683aed-a0f1-48b2-9b5e-139e9cc2a7f0").unwrap();
        assert!(a < b && a.to_u128() < b.to_u128());
        assert_eq!(a.to_u128(), 0x0b683aed_a0f1_48b2_9b5e_139e9cc2a757);
    }

    #[test]
    fn collection_and_external_ids_follow_rekognition_rules() {
        assert!(CollectionId::parse("ephemeral-faces-collection").is_ok());
        assert!(CollectionId::parse("a:b").is_err());
        assert!(CollectionId::parse(&"a".repeat(256)).is_err());
        assert!(ExternalImageId::parse("obama.jpg:1").is_ok());
        let err = ExternalImageId::parse("my photo.jpg").unwrap_err();
        assert!(err.to_string().contains("' '"), "{err}");
        assert_eq!(
            ExternalImageId::from_file_name("my photo (1).jpg")
                .unwrap()
                .as_str(),
            "my_photo__1_.jpg"
        );
    }

    #[test]
    fn image_ids_are_uuids_or_sha256() {
        assert!(ImageId::parse("1f2e3d4c-0000-1111-2222-333344445555").is_ok());
        assert_eq!(ImageId::of_bytes(b"").as_str().len(), 64);
        assert!(ImageId::parse("nope").is_err());
    }
}
