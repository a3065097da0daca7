//! The task event versions this plugin understands, oldest first.
//!
//! `1.0` is the seed's TaskEvent; `1.1` adds `payload.recurrence`; `2.0` makes task ids strings.
//! The order of [`Version::ALL`] is the migration ladder: adjacent versions are one step apart.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1_0,
    V1_1,
    V2_0,
}

impl Version {
    /// Every supported version, oldest first (the ladder).
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V2_0];
    /// The version the handler works in internally.
    pub const LATEST: Version = Version::V2_0;

    /// The exact `event_version` strings; anything else (`"1"`, `"1.0.0"`, ` 1.0`) is unsupported.
    pub fn parse(s: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V2_0 => "2.0",
        }
    }

    /// Position on the ladder (0 = oldest).
    pub fn rank(self) -> usize {
        self as usize
    }

    /// Task ids are JSON integers before 2.0 and strings from 2.0 on.
    pub fn integer_ids(self) -> bool {
        self < Version::V2_0
    }

    /// `payload.recurrence` exists from 1.1 on; 1.0 keeps series fields flat in the payload.
    pub fn has_recurrence_object(self) -> bool {
        self >= Version::V1_1
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact_and_round_trips() {
        for v in Version::ALL {
            assert_eq!(Version::parse(v.as_str()), Some(v));
        }
        for bad in ["", "1", "1.0.0", " 1.0", "2", "v2.0", "1.2"] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ladder_is_ordered() {
        let ranks: Vec<usize> = Version::ALL.iter().map(|v| v.rank()).collect();
        assert_eq!(ranks, vec![0, 1, 2]);
        assert_eq!(Version::LATEST, *Version::ALL.last().unwrap());
    }
}
