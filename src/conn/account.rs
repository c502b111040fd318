//! Who connects where, as an error names it (`user@host:port`).

use std::fmt;
use std::path::PathBuf;

use super::ConnSpec;
use crate::vocab::Endpoint;

/// Who connected where, as errors name it: `user@host:port`, or `user@/path/to/socket` for a
/// local socket. Never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub endpoint: Endpoint,
    pub socket: Option<PathBuf>,
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.socket {
            Some(s) => write!(f, "{}@{}", self.user, s.display()),
            None => write!(f, "{}@{}", self.user, self.endpoint),
        }
    }
}

impl ConnSpec {
    /// The account and server, as errors name them.
    pub fn account(&self) -> Account {
        Account {
            user: self.user.clone(),
            endpoint: self.address(),
            socket: self.socket.clone(),
        }
    }
}
