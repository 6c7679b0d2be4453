//! `sysjail export oci`, its drift check (`sysjail check --bundle`), and the
//! bundle's hidden entries `oci-init` and `hook`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sysjail::model::IdRef;
use sysjail::oci::{self, BINARY, BUNDLE_DIR, INIT_FILE, PROFILE_FILE, RootEntry, RootKind};
use sysjail::plan::Login;
use sysjail::policy::{MountOp, Policy, UserDatabase};
use sysjail::sys::bundle::{self, Access, BundleDir};
use sysjail::users;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The format: an OCI runtime-spec bundle
    #[arg(value_enum, value_name = "FORMAT")]
    format: Format,
    /// The jail definition
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The bundle directory to write (created if missing)
    #[arg(long, value_name = "DIR")]
    bundle: PathBuf,
    /// Exit with status 1 when the bundle loses any promise
    #[arg(long)]
    strict: bool,
    /// First host id of the jail's 65536 ids [default: the owner of an
    /// id-mapped tree, 1879048192 otherwise]
    #[arg(long, value_name = "ID")]
    id_base: Option<u32>,
    /// text: the report for people; json: for tools
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format_report: ReportFormat,
    /// The command instead of the definition's
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// config.json, the seccomp profile, and sysjail's init
    Oci,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let Some((policy, dir, bundle)) = prepare(&args.file, &args.bundle, true, "sysjail export") else {
        return ExitCode::FAILURE;
    };
    let command = (!args.command.is_empty()).then(|| args.command.clone());
    let exported = match build(&policy, &bundle, args.id_base.map(|id| (id, id)), command) {
        Ok(b) => b,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail export: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = write(&exported, &dir, host_rooted(&policy)) {
        sysjail::eprintln_lossy!("sysjail export: {e}");
        return ExitCode::FAILURE;
    }
    match args.format_report {
        ReportFormat::Text => print!("{}", exported.report),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&exported.report).expect("JSON")),
    }
    let lost = exported.report.lost().count();
    if args.strict && lost > 0 {
        sysjail::eprintln_lossy!("sysjail export: --strict: the bundle loses {lost} promises");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The policy of `file` on this host, and the bundle directory, absolute;
/// `create` makes the directory if it is missing (`export`, not `check`).
fn prepare(file: &Path, bundle: &Path, create: bool, me: &str) -> Option<(Policy, BundleDir, PathBuf)> {
    let def = super::load_for_launch(file, true)?;
    let facts = sysjail::facts();
    let policy = match sysjail::compile(&def.jail, &facts) {
        Ok(p) => p,
        Err(refused) => {
            sysjail::eprintln_lossy!("{me}: {}: refused on this host: {refused}", def.jail.name);
            return None;
        }
    };
    // The directory is held open: what is checked is what is written.
    let dir = BundleDir::open(bundle, if create { Access::Create } else { Access::Inspect }).and_then(|dir| {
        let canonical = std::fs::read_link(dir.proc_path())?;
        Ok((dir, canonical))
    });
    match dir {
        Ok((dir, canonical)) => Some((policy, dir, canonical)),
        Err(e) => {
            sysjail::eprintln_lossy!("{me}: {e}");
            None
        }
    }
}

/// Exports `policy` into `bundle`; `ids` are the first host uid and gid,
/// by default the id-mapped tree's owner or the launcher's first range.
fn build(
    policy: &Policy,
    bundle: &Path,
    ids: Option<(u32, u32)>,
    command: Option<Vec<String>>,
) -> Result<oci::Bundle, String> {
    let tree_owner = tree_owner(policy)?;
    let (id_base, gid_base) = ids
        .or(tree_owner)
        .unwrap_or((sysjail::launch::ID_BASE, sysjail::launch::ID_BASE));
    let options = oci::Options {
        bundle: bundle.to_path_buf(),
        id_base,
        gid_base,
        tree_owner,
        command,
        login: login(policy)?,
        dynamic: std::env::current_exe().is_ok_and(|exe| dynamic(&exe)),
        host_root: host_root().map_err(|e| format!("reading /: {e}"))?,
    };
    oci::export(policy, &options).map_err(|e| e.to_string())
}

/// The entries of the host's `/`, sorted by name.
fn host_root() -> std::io::Result<Vec<RootEntry>> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/")?.dev();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/")? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(String::from) else {
            continue;
        };
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = if meta.file_type().is_symlink() {
            RootKind::Link(std::fs::read_link(&path)?.display().to_string())
        } else if meta.dev() != root {
            RootKind::MountPoint
        } else if meta.is_dir() {
            RootKind::Dir
        } else if meta.is_file() {
            RootKind::File
        } else {
            continue;
        };
        out.push(RootEntry { name, kind });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The bundle's rootfs for a jail whose root is the host's `/`.
fn write_rootfs(entries: &[RootEntry], dir: &Path) -> std::io::Result<()> {
    let rootfs = dir.join(oci::ROOTFS);
    if std::fs::symlink_metadata(&rootfs).is_ok() {
        // Only what an export made goes: a tree of anyone else's stays.
        if !exported_rootfs(&rootfs)? {
            return Err(std::io::Error::other(format!(
                "{} holds more than an export writes (empty directories and files, links); remove it or choose \
                 another bundle directory",
                rootfs.display()
            )));
        }
        std::fs::remove_dir_all(&rootfs)?;
    }
    std::fs::create_dir(&rootfs)?;
    for e in entries {
        let at = rootfs.join(&e.name);
        match &e.kind {
            RootKind::Dir | RootKind::MountPoint => std::fs::create_dir(&at)?,
            RootKind::File => drop(std::fs::File::create(&at)?),
            RootKind::Link(target) => std::os::unix::fs::symlink(target, &at)?,
        }
    }
    Ok(())
}

/// Whether `rootfs` holds only what [`write_rootfs`] makes.
fn exported_rootfs(rootfs: &Path) -> std::io::Result<bool> {
    if !std::fs::symlink_metadata(rootfs)?.is_dir() {
        return Ok(false);
    }
    for entry in std::fs::read_dir(rootfs)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let ours = meta.file_type().is_symlink()
            || (meta.is_file() && meta.len() == 0)
            || (meta.is_dir() && std::fs::read_dir(&path)?.next().is_none());
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes the bundle, every file by the directory's descriptor and never
/// through a link ([`BundleDir`]).
fn write(b: &oci::Bundle, dir: &BundleDir, host_root: bool) -> std::io::Result<()> {
    if host_root {
        // By the descriptor's /proc name: the directory checked, whatever
        // its path names now.
        write_rootfs(&b.host_root, &dir.proc_path())?;
    }
    dir.write(
        "config.json",
        pretty(&oci::config_json(&b.spec)).as_bytes(),
        bundle::FILE_MODE,
    )?;
    dir.write(PROFILE_FILE, pretty(&b.profile).as_bytes(), bundle::FILE_MODE)?;
    let own = dir.subdir(BUNDLE_DIR, Access::Create)?;
    own.write(INIT_FILE, pretty(&b.init).as_bytes(), bundle::FILE_MODE)?;
    // A copy, not a link: the bundle must not change when the build does.
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    own.install(BINARY, &mut exe, bundle::EXEC_MODE)
}

/// Pretty JSON, with a final newline.
fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("JSON") + "\n"
}

/// The JSON value a file of the bundle holds.
fn value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("JSON")
}

/// Whether the ELF file at `exe` names a program interpreter (PT_INTERP),
/// that is, needs a dynamic loader and libraries.
fn dynamic(exe: &Path) -> bool {
    let Ok(bytes) = std::fs::read(exe) else {
        return true;
    };
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    };
    // 64-bit little-endian ELF: e_phoff at 0x20, e_phentsize 0x36, e_phnum 0x38.
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return true;
    };
    (0..count).any(|i| {
        bytes
            .get(phoff + i * size..phoff + i * size + 4)
            .is_some_and(|t| t == 3u32.to_le_bytes())
    })
}

/// The owner of the jail's tree when the policy id-maps it (and so it is
/// owned by an unprivileged range, which validation holds to).
fn tree_owner(policy: &Policy) -> Result<Option<(u32, u32)>, String> {
    let Some(source) = policy.mounts.iter().find_map(|m| match &m.op {
        MountOp::Root {
            source, idmap: true, ..
        } => Some(source),
        _ => None,
    }) else {
        return Ok(None);
    };
    let tree = sysjail::sys::hostpath::open(source.as_path()).map_err(|e| e.to_string())?;
    Ok((tree.stat.uid != 0 && tree.stat.gid != 0).then_some((tree.stat.uid, tree.stat.gid)))
}

/// Whether the jail's root is the host's `/`.
fn host_rooted(policy: &Policy) -> bool {
    policy
        .mounts
        .iter()
        .any(|m| matches!(&m.op, MountOp::Root { source, .. } if source.is_root()))
}

/// The jail's user, looked up in its database as a launch would.
fn login(policy: &Policy) -> Result<Login, String> {
    let user = &policy.process.user;
    let root = match user.database {
        UserDatabase::Host => PathBuf::from("/"),
        UserDatabase::Jail => policy
            .mounts
            .iter()
            .find_map(|m| match &m.op {
                MountOp::Root { source, .. } => Some(source.as_path().to_path_buf()),
                _ => None,
            })
            .unwrap_or_else(|| PathBuf::from("/")),
    };
    let read =
        |name: &str| sysjail::sys::hostpath::read_small(&root.join("etc").join(name), 1 << 20).unwrap_or_default();
    let passwd = users::parse_passwd(&read("passwd"));
    let groups = users::parse_group(&read("group"));
    let who = user.name.clone().unwrap_or(IdRef::Id(0));
    let Some(p) = users::find_user(&passwd, &who) else {
        return Err(format!("no user {who} in {}", root.join("etc/passwd").display()));
    };
    let extra = match &user.groups {
        Some(list) => list
            .iter()
            .map(|g| users::find_group(&groups, g).ok_or_else(|| format!("no group {g}")))
            .collect::<Result<Vec<u32>, String>>()?,
        None => users::groups_of(&groups, &p),
    };
    Ok(Login {
        name: p.name,
        uid: p.uid,
        gid: p.gid,
        groups: extra,
        home: p.home,
        shell: p.shell,
    })
}

/// `sysjail check --bundle DIR FILE`: compares the bundle with what the
/// export of `file` writes now, with the bundle's id base and command (the
/// two export options).
pub fn check_bundle(file: &Path, bundle: &Path) -> ExitCode {
    let Some((policy, dir, canonical)) = prepare(file, bundle, false, "sysjail check") else {
        return ExitCode::FAILURE;
    };
    match check_in(&policy, &dir, &canonical) {
        Ok(diffs) => {
            for d in &diffs {
                println!("{d}");
            }
            if diffs.is_empty() {
                println!(
                    "{}: the bundle is what `sysjail export oci` writes for {}",
                    canonical.display(),
                    file.display()
                );
                ExitCode::SUCCESS
            } else {
                println!(
                    "{}: {} differences from the export of {}",
                    canonical.display(),
                    diffs.len(),
                    file.display()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail check: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The most a bundle's JSON file may hold: far above what export writes,
/// far below what would exhaust memory (a link to /dev/zero is refused
/// anyway; a huge regular file is not read past this).
const JSON_LIMIT: u64 = 16 << 20;

/// The differences between the bundle in `dir` and the export of `policy`:
/// the JSON files by pointer, then the owners, modes and binary.
fn check_in(policy: &Policy, dir: &BundleDir, canonical: &Path) -> Result<Vec<String>, String> {
    let json = |d: &BundleDir, name: &str| -> Result<serde_json::Value, String> {
        let text = d.read_small(name, JSON_LIMIT).map_err(|e| e.to_string())?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", d.path().join(name).display()))
    };
    let own = dir.subdir(BUNDLE_DIR, Access::Inspect).map_err(|e| e.to_string())?;
    let mut found = json(dir, "config.json")?;
    if let Err(e) = serde_json::from_value::<oci_spec::runtime::Spec>(found.clone()) {
        return Err(format!(
            "{}: not a runtime spec: {e}",
            dir.path().join("config.json").display()
        ));
    }
    let base = |map: &str| found["linux"][map][0]["hostID"].as_u64().map(|v| v as u32);
    let ids = base("uidMappings").zip(base("gidMappings"));
    let command: Option<Vec<String>> = found["process"]["args"].as_array().map(|a| {
        a.iter()
            .skip_while(|v| v.as_str() != Some("--"))
            .skip(1)
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    });
    let expected = build(policy, canonical, ids, command.filter(|c| !c.is_empty()))?;
    oci::normalize(&mut found);
    let mut diffs: Vec<String> = oci::drift::compare("config.json", &oci::config_json(&expected.spec), &found)
        .iter()
        .map(ToString::to_string)
        .collect();
    let profile = json(dir, PROFILE_FILE)?;
    diffs.extend(
        oci::drift::compare(PROFILE_FILE, &value(&expected.profile), &profile)
            .iter()
            .map(ToString::to_string),
    );
    let init = json(&own, INIT_FILE)?;
    diffs.extend(
        oci::drift::compare(&format!("{BUNDLE_DIR}/{INIT_FILE}"), &value(&expected.init), &init)
            .iter()
            .map(ToString::to_string),
    );
    diffs.extend(ownership(dir, &own).map_err(|e| e.to_string())?);
    Ok(diffs)
}

/// How the owners and modes of the bundle's directories and files, and its
/// copy of the binary, differ from what export makes.
fn ownership(dir: &BundleDir, own: &BundleDir) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut binary = false;
    for (label, d) in [(".", dir), (BUNDLE_DIR, own)] {
        let st = d.own_stat()?;
        if let Some(why) = bundle::distrust(st.st_uid, st.st_mode) {
            out.push(format!("{label}: the directory is {why}"));
        }
    }
    let euid = nix::unistd::geteuid().as_raw();
    for (d, prefix, name, mode) in [
        (dir, "", "config.json", bundle::FILE_MODE),
        (dir, "", PROFILE_FILE, bundle::FILE_MODE),
        (own, "sysjail/", INIT_FILE, bundle::FILE_MODE),
        (own, "sysjail/", BINARY, bundle::EXEC_MODE),
    ] {
        let label = format!("{prefix}{name}");
        let st = d.stat(name)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            out.push(format!(
                "{label}: the export writes a regular file, the bundle has something else"
            ));
            continue;
        }
        binary |= name == BINARY;
        if st.st_uid != euid {
            out.push(format!(
                "{label}: the export writes it owned by uid {euid}, the bundle has uid {}",
                st.st_uid
            ));
        }
        if st.st_mode & 0o7777 != mode {
            out.push(format!(
                "{label}: the export writes mode {mode:o}, the bundle has mode {:o}",
                st.st_mode & 0o7777
            ));
        }
        if st.st_nlink != 1 {
            out.push(format!(
                "{label}: the export writes one name, the bundle's file has {}",
                st.st_nlink
            ));
        }
    }
    // The binary the engine runs as root in hooks: byte for byte this one.
    if binary && !bundle::same_content(own.open_file(BINARY)?.0, std::fs::File::open("/proc/self/exe")?)? {
        out.push(format!(
            "{BUNDLE_DIR}/{BINARY}: the export copies this sysjail binary, the bundle has another file"
        ));
    }
    Ok(out)
}

/// `sysjail oci-init FILE -- CMD...`.
pub fn init(file: &Path, command: &[String]) -> ExitCode {
    match oci::run::init(file, command) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail oci-init: {e}");
            ExitCode::from(127)
        }
    }
}

/// What a hook does.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// createRuntime: attach the address programs
    CreateRuntime,
    /// poststop: remove the cgroup of the programs
    Poststop,
}

/// `sysjail hook VERB FILE`, with the container state on stdin.
pub fn hook(verb: Hook, file: &Path) -> ExitCode {
    let stdin = &mut std::io::stdin().lock();
    let result = match verb {
        Hook::CreateRuntime => oci::run::hook_create_runtime(file, stdin),
        Hook::Poststop => oci::run::hook_poststop(file, stdin),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail hook: {e}");
            ExitCode::FAILURE
        }
    }
}
