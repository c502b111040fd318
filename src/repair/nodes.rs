//! The nodes a plan is applied to: one connection per endpoint, opened on first use with the
//! replica's credentials (or the source's own), spare sessions opened and prepared ahead, and
//! the repair lock taken on each (`lock_all`). Used by the applier and by `ops`.

use std::collections::BTreeMap;

use crate::sql::Statement;

use crate::conn::{ConnSpec, Server};
use crate::status::model::ChannelStatus;
use crate::vocab::Endpoint;

/// Connections by endpoint, opened on first use with the replica's credentials (or the
/// source's own, when one was given).
pub struct Nodes {
    specs: BTreeMap<Endpoint, ConnSpec>,
    open: BTreeMap<Endpoint, Server>,
    /// Sessions being opened (and their statements prepared) ahead, in the background, each
    /// handed out once to a step that needs a session of its own.
    spare: BTreeMap<Endpoint, std::thread::JoinHandle<Option<Server>>>,
    /// Nodes whose session holds the repair lock (`lock_all`).
    locked: std::collections::BTreeSet<Endpoint>,
}

impl Nodes {
    pub fn new(specs: impl IntoIterator<Item = ConnSpec>) -> Nodes {
        Nodes {
            specs: specs.into_iter().map(|s| (s.address(), s)).collect(),
            open: BTreeMap::new(),
            spare: BTreeMap::new(),
            locked: Default::default(),
        }
    }

    pub fn has(&self, endpoint: &Endpoint) -> bool {
        self.specs.contains_key(endpoint)
    }

    pub fn spec(&self, endpoint: &Endpoint) -> anyhow::Result<&ConnSpec> {
        self.specs
            .get(endpoint)
            .ok_or_else(|| anyhow::anyhow!("no connection settings for {endpoint}"))
    }

    /// The node `ch` (a channel of another node) replicates from, by the one rule
    /// (`ChannelStatus::replicates_from`: server_id once known, else host and port). The
    /// replica may name its source differently (a hostname) than the plan reached it.
    pub fn source_of(&mut self, ch: &ChannelStatus) -> Option<Endpoint> {
        let endpoints: Vec<Endpoint> = self.specs.keys().cloned().collect();
        endpoints.into_iter().find(|e| {
            self.get(e)
                .is_ok_and(|s| ch.replicates_from(e, Some(s.server_id)))
        })
    }

    /// The node's session, opened on first use. A session the server has closed meanwhile
    /// (seen under load while replication threads restart) is opened again: these sessions
    /// only read status and rows and run single statements; row writes have sessions of
    /// their own.
    pub fn get(&mut self, endpoint: &Endpoint) -> anyhow::Result<&mut Server> {
        if let Some(server) = self.open.get_mut(endpoint) {
            // A reopened session that held the repair lock takes it again, or another repair
            // got it meanwhile and this one stops.
            if server.revive()? && self.locked.contains(endpoint) {
                super::lock::take(server)?;
            }
        } else {
            let server = Server::connect(self.spec(endpoint)?)?;
            self.open.insert(endpoint.clone(), server);
        }
        Ok(self.open.get_mut(endpoint).expect("just inserted"))
    }
}

impl Nodes {
    /// Opens every node's session at once (each connection waits on its own server); one
    /// that fails is left for `get` to report. A spare session on each node in `spare_on`
    /// (the nodes whose steps will want a session of their own) is opened in the background,
    /// for `session_of_its_own` to take later.
    pub fn open_all(&mut self, spare_on: &[&Endpoint]) {
        let wanted: Vec<&ConnSpec> = self
            .specs
            .iter()
            .filter(|(ep, _)| !self.open.contains_key(*ep))
            .map(|(_, s)| s)
            .collect();
        let opened = crate::conn::connect_all(&wanted).into_iter().flatten();
        for server in opened {
            self.open.insert(server.spec.address(), server);
        }
        // After the nodes' own sessions, which take the ones a diagnosis handed back.
        for ep in spare_on {
            if self.spare.contains_key(*ep) {
                continue;
            }
            let Some(spec) = self.specs.get(*ep).cloned() else {
                continue;
            };
            let opening = std::thread::spawn(move || Server::connect(&spec).ok());
            self.spare.insert((*ep).clone(), opening);
        }
    }

    /// Takes the repair lock on every node's own session, always in the same order whichever
    /// node is the replica (two repairs of the two directions of a dual-master pair then meet
    /// on the first lock instead of each holding one). Held while these sessions are open;
    /// one lost and opened again takes it again (`get`). True when every session already
    /// held it: each is a session a diagnosis under the lock handed on, its connection alive
    /// since, so nothing another repair does can have come between that diagnosis and now.
    pub fn lock_all(&mut self) -> anyhow::Result<bool> {
        let endpoints: Vec<Endpoint> = self.specs.keys().cloned().collect();
        let mut all_held = true;
        for ep in endpoints {
            let server = self.get(&ep)?;
            all_held &= server.holds_repair_lock();
            super::lock::take(server)?;
            self.locked.insert(ep);
        }
        Ok(all_held)
    }

    /// A session nothing else uses (its session settings stay its own): the spare opened
    /// ahead, if it is still alive, else a new one.
    pub fn session_of_its_own(&mut self, endpoint: &Endpoint) -> anyhow::Result<Server> {
        match self.spare_session(endpoint) {
            Some(server) => Ok(server),
            None => Ok(Server::connect(self.spec(endpoint)?)?),
        }
    }

    /// The spare session opened ahead on the node, if there is one and it is still alive.
    pub fn spare_session(&mut self, endpoint: &Endpoint) -> Option<Server> {
        let mut server = self.spare.remove(endpoint)?.join().ok()??;
        server.ping().is_ok().then_some(server)
    }

    /// Prepares `statements` on the node's spare session in the background, while other
    /// steps run: a statement of a thousand placeholders takes about as long to prepare as to
    /// execute, and the row step that takes the session finds them ready (the driver keeps
    /// them by their text). A statement that fails to prepare is left for its step to run
    /// and report.
    pub fn prepare_ahead(&mut self, endpoint: &Endpoint, statements: Vec<String>) {
        let Some(opening) = self.spare.remove(endpoint) else {
            return;
        };
        let preparing = std::thread::spawn(move || {
            let mut server = opening.join().ok()??;
            for sql in statements {
                if server.prepare(&Statement::plain(sql)).is_err() {
                    break;
                }
            }
            Some(server)
        });
        self.spare.insert(endpoint.clone(), preparing);
    }

    /// Two nodes' sessions at once (to work on both in parallel), opened on first use.
    pub fn pair(
        &mut self,
        a: &Endpoint,
        b: &Endpoint,
    ) -> anyhow::Result<(&mut Server, &mut Server)> {
        self.get(a)?;
        self.get(b)?;
        let mut open = self.open.iter_mut().filter(|(ep, _)| *ep == a || *ep == b);
        match (open.next(), open.next()) {
            (Some((first, x)), Some((_, y))) if first == a => Ok((x, y)),
            (Some((_, x)), Some((_, y))) => Ok((y, x)),
            _ => anyhow::bail!("{a} and {b} are the same node"),
        }
    }
}
