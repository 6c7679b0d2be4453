//! A recording double of both seams, [`Kernel`] (init's calls) and [`Host`]
//! (the supervisor's): one log of calls by name, in order.

use std::io;
use std::path::Path;

use super::kernel::{Create, Kernel};
use super::setup::{Failure, Host, Prepare, Veth};
use crate::model::{AbsPath, Rlimit};
use crate::plan::{CloneSpec, IdMapLines, IdMapping};
use crate::policy::landlock::{Access, Scope};
use crate::rewrite::Program;
use crate::seccomp::bpf::Insn;

/// A kernel that records each call by name, and fails the call numbered
/// `fail_at` (0-based) with EPERM.
#[derive(Default)]
pub struct Recorder {
    /// The calls so far.
    pub calls: Vec<&'static str>,
    /// The call that fails.
    pub fail_at: Option<usize>,
    /// Paths the recorded tree holds as files; everything else is a directory.
    pub files: Vec<AbsPath>,
    /// Paths the recorded tree holds as symbolic links.
    pub links: Vec<AbsPath>,
}

impl Recorder {
    pub fn call(&mut self, name: &'static str) -> io::Result<()> {
        self.calls.push(name);
        if self.fail_at == Some(self.calls.len() - 1) {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(())
    }
}

impl Kernel for Recorder {
    type Fd = ();
    fn switch_ids(&mut self, _: u32, _: u32, _: bool) -> io::Result<()> {
        self.call("switch_ids")
    }
    fn user_counter(&mut self, _: &str, _: u32) -> io::Result<()> {
        self.call("user_counter")
    }
    fn unshare_cgroup(&mut self) -> io::Result<()> {
        self.call("unshare_cgroup")
    }
    fn await_cgroups(&mut self) -> io::Result<()> {
        self.call("await_cgroups")
    }
    fn make_private(&mut self) -> io::Result<()> {
        self.call("make_private")
    }
    fn staging(&mut self) -> io::Result<()> {
        self.call("staging")
    }
    fn host_tree(&mut self, _: &AbsPath, _: bool) -> io::Result<((), bool)> {
        self.call("host_tree").map(|()| ((), true))
    }
    fn jail_tree(&mut self, _: &(), _: bool) -> io::Result<()> {
        self.call("jail_tree")
    }
    fn new_fs(&mut self, _: &str, _: &[(&str, String)], _: u64) -> io::Result<()> {
        self.call("new_fs")
    }
    fn set_attr(&mut self, _: &(), _: u64, _: bool) -> io::Result<()> {
        self.call("set_attr")
    }
    fn is_dir(&mut self, _: &()) -> io::Result<bool> {
        self.call("is_dir").map(|()| true)
    }
    fn lookup(&mut self, target: &AbsPath, _: Create) -> io::Result<Option<((), bool)>> {
        let dir = !self.files.contains(target);
        self.call("lookup").map(|()| Some(((), dir)))
    }
    fn lookup_plain(&mut self, target: &AbsPath) -> io::Result<super::kernel::Plain<()>> {
        use super::kernel::Plain;
        self.call("lookup_plain")?;
        Ok(if self.links.contains(target) {
            Plain::Link
        } else if self.files.contains(target) {
            Plain::File(())
        } else {
            Plain::Other("a directory")
        })
    }
    fn attach(&mut self, _: (), _: &()) -> io::Result<()> {
        self.call("attach")
    }
    fn staged_file(&mut self, _: &AbsPath, _: &[u8]) -> io::Result<()> {
        self.call("staged_file")
    }
    fn symlink(&mut self, _: &str, _: &AbsPath) -> io::Result<()> {
        self.call("symlink")
    }
    fn enter(&mut self) -> io::Result<()> {
        self.call("enter")
    }
    fn sethostname(&mut self, _: &str) -> io::Result<()> {
        self.call("sethostname")
    }
    fn loopback_up(&mut self) -> io::Result<()> {
        self.call("loopback_up")
    }
    fn interface(&mut self, _: &str, _: &[(std::net::IpAddr, u8)], _: &[crate::plan::Route]) -> io::Result<()> {
        self.call("interface")
    }
    fn setrlimit(&mut self, _: Rlimit, _: u64) -> io::Result<()> {
        self.call("setrlimit")
    }
    fn capabilities(&mut self, _: u64) -> io::Result<()> {
        self.call("capabilities")
    }
    fn no_new_privs(&mut self) -> io::Result<()> {
        self.call("no_new_privs")
    }
    fn landlock(&mut self, _: &[(AbsPath, Access)], _: &[Scope]) -> io::Result<String> {
        self.call("landlock").map(|()| "recorded".into())
    }
    fn seccomp(&mut self, _: &[Insn], listener: bool) -> io::Result<Option<()>> {
        self.call("seccomp").map(|()| listener.then_some(()))
    }
}

impl Host for Recorder {
    type Init = ();
    type Fd = ();
    type Joining = Vec<Result<(), Failure>>;
    fn create_cgroup(&mut self, _: &Path, _: &[(String, String)]) -> Result<(), Failure> {
        Ok(self.call("create_cgroup")?)
    }
    fn attach_rewrite(&mut self, _: &Path, _: &[Program]) -> Result<(), Failure> {
        Ok(self.call("attach_rewrite")?)
    }
    fn clone_init(&mut self, _: &CloneSpec) -> Result<(), Failure> {
        Ok(self.call("clone_init")?)
    }
    fn join_cgroups(&mut self, _: &(), paths: Vec<std::path::PathBuf>) -> Vec<Result<(), Failure>> {
        paths.iter().map(|_| Ok(self.call("join_cgroup")?)).collect()
    }
    fn write_id_maps(&mut self, _: &(), _: &IdMapLines, _: &IdMapLines, _: bool) -> Result<(), Failure> {
        Ok(self.call("write_id_maps")?)
    }
    fn create_veth(&mut self, _: &(), _: Veth<'_>) -> Result<(), Failure> {
        Ok(self.call("create_veth")?)
    }
    fn prepare_mount(&mut self, _: Prepare<'_>, _: &IdMapping) -> Result<(), Failure> {
        Ok(self.call("prepare_mount")?)
    }
    fn abandon(&mut self, _: ()) {
        self.calls.push("abandon");
    }
}
