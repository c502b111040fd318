//! The sandbox itself: servers stop by PID when a sandbox is dropped, also when the test that
//! owns it panics.

mod support;

use std::path::Path;

use support::*;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn servers_stop_and_dirs_vanish_on_drop_and_on_panic() {
    for flavor in FLAVORS {
        let sb = Sandbox::start(flavor, Topology::DualMaster).unwrap();
        let pids: Vec<u32> = sb.nodes.iter().map(|n| n.pid).collect();
        let dir = sb.dir.clone();
        assert!(pids.iter().all(|p| alive(*p)));
        drop(sb);
        assert!(
            pids.iter().all(|p| !alive(*p)),
            "{flavor}: servers still running"
        );
        assert!(!dir.exists());

        let (tx, rx) = std::sync::mpsc::channel();
        let panicked = std::thread::spawn(move || {
            let sb = Sandbox::start(flavor, Topology::SourceReplica).unwrap();
            tx.send((
                sb.nodes.iter().map(|n| n.pid).collect::<Vec<_>>(),
                sb.dir.clone(),
            ))
            .unwrap();
            panic!("a test failing while it owns a sandbox");
        })
        .join();
        assert!(panicked.is_err());
        let (pids, dir): (Vec<u32>, std::path::PathBuf) = rx.recv().unwrap();
        assert!(
            pids.iter().all(|p| !alive(*p)),
            "{flavor}: servers survived a panic"
        );
        assert!(!Path::new(&dir).exists());
    }
}

#[test]
fn every_recipe_declares_its_topology_and_expectations() {
    let dir = replmend_sandbox::incidents_dir();
    let mut n = 0;
    for e in std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        n += 1;
        let topo = std::fs::read_to_string(e.path().join("topology")).unwrap();
        topo.parse::<Topology>().unwrap();
        let expect = std::fs::read_to_string(e.path().join("expect")).unwrap();
        // `NODE ERRNO` or `NODE:CHANNEL ERRNO` (a multi-source replica's channel).
        assert!(
            expect.lines().any(|l| match l.split_once(' ') {
                Some((node, errno)) => node.starts_with('n') && errno.parse::<u32>().is_ok(),
                None => false,
            }),
            "{:?}",
            e.path()
        );
    }
    assert!(n >= 7);
}
