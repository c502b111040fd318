//! A server's network address: host and port, written `host:port` (`[v6]:port`). Pure.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// A server's host and port. Written as given (`localhost:3306` stays so in messages and
/// journals); compared and hashed normalized: host names case-insensitively, `localhost`,
/// `::1` and `127.0.0.1` as the same loopback host.
#[derive(Debug, Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    pub fn new(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            port,
        }
    }

    /// `host:port` or `[v6]:port`, the form Display writes (the port is what follows the
    /// last ':'). None without a valid port.
    pub fn parse(s: &str) -> Option<Endpoint> {
        let (h, p) = s.rsplit_once(':')?;
        Some(Endpoint::new(h.trim_matches(['[', ']']), p.parse().ok()?))
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as compared: lowercase, the loopback names as one.
    fn normalized_host(&self) -> String {
        match self.host.to_ascii_lowercase().as_str() {
            "localhost" | "::1" | "127.0.0.1" => "127.0.0.1".to_string(),
            other => other.to_string(),
        }
    }
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Endpoint) -> bool {
        self.port == other.port && self.normalized_host() == other.normalized_host()
    }
}

impl Eq for Endpoint {}

impl Hash for Endpoint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized_host().hash(state);
        self.port.hash(state);
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read back from its Display form (journals, verify reports); a malformed one is an error
/// naming it.
impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Endpoint, D::Error> {
        let s = String::deserialize(d)?;
        Endpoint::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not an endpoint (host:port or [v6]:port)"))
        })
    }
}

/// Ordered as compared: by normalized host, then port (consistent with `Eq`, so two
/// spellings of one server are one map key).
impl PartialOrd for Endpoint {
    fn partial_cmp(&self, other: &Endpoint) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Endpoint {
    fn cmp(&self, other: &Endpoint) -> std::cmp::Ordering {
        (self.normalized_host(), self.port).cmp(&(other.normalized_host(), other.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_host_port() {
        let v6 = Endpoint::parse("[::1]:3306").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 3306));
        assert_eq!(v6.to_string(), "[::1]:3306");
        let v4 = Endpoint::parse("127.0.0.1:3307").unwrap();
        assert_eq!((v4.host(), v4.port()), ("127.0.0.1", 3307));
        assert_eq!(v4.to_string(), "127.0.0.1:3307");
        assert_eq!(Endpoint::new("db1", 1).to_string(), "db1:1");
        assert_eq!(Endpoint::parse("::1:3306").unwrap().host(), "::1");
        for bad in ["nope", "h:notaport", "h:70000", "h:"] {
            assert!(Endpoint::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn compares_normalized_and_writes_as_given() {
        let local = Endpoint::new("localhost", 3306);
        assert_eq!(local, Endpoint::new("127.0.0.1", 3306));
        assert_eq!(local, Endpoint::new("::1", 3306));
        assert_eq!(Endpoint::new("DB1", 3306), Endpoint::new("db1", 3306));
        assert_ne!(local, Endpoint::new("localhost", 3307));
        assert_ne!(Endpoint::new("db1", 3306), Endpoint::new("db2", 3306));
        assert_eq!(local.to_string(), "localhost:3306");
        let set: std::collections::HashSet<_> =
            [local.clone(), Endpoint::new("127.0.0.1", 3306)].into();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn serializes_as_written_and_reads_back() {
        let v6 = Endpoint::new("::1", 3306);
        assert_eq!(serde_json::to_string(&v6).unwrap(), "\"[::1]:3306\"");
        let back: Endpoint = serde_json::from_str("\"[::1]:3306\"").unwrap();
        assert_eq!((back.host(), back.port()), ("::1", 3306));
        let err = serde_json::from_str::<Endpoint>("\"nope\"").unwrap_err();
        assert!(
            err.to_string().contains("\"nope\" is not an endpoint"),
            "{err}"
        );
    }
}
