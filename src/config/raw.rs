//! The format, table by table: every key, its TOML type and its documentation.
//!
//! These doc comments are the descriptions in `sysjail schema`; man/sysjail.toml.5
//! says the same at more length, and a test keeps the two in step.

use super::decode::{IntOrText, Map, Spanned, toml_enum, toml_table};

toml_table! {
    /// A jail definition (sysjail.toml(5)): one file, one jail.
    pub struct RawJail {
        /// The jail's name, unique among running jails. Default: the file's name
        /// without `.toml`.
        "name" => name: String,
        /// Marks a file that only other files extend: `check` does not require
        /// `path` or `command`, and `up` refuses it when it is named and skips
        /// it in a directory of jails. Not inherited.
        "template" => template: bool,
        /// A base definition merged under this one, relative to this file. Tables
        /// merge key by key; any other value set here replaces the base's.
        "extends" => extends: String,
        /// Jails this one needs running first, by name: `up` starts them before
        /// it (finding each among the jails it was given, then as NAME.toml
        /// beside this file or in the configuration directory) and `down` stops
        /// them after it. `check` reports cycles and names it cannot find.
        "depend" => depend: Vec<Spanned<String>>,
        /// The jail's root directory on the host (absolute). "/" shares the host's
        /// root, read-only unless `read-only = false`.
        "path" => path: String,
        /// Mount the jail's root read-only. Default: true when `path` is "/",
        /// false otherwise.
        "read-only" => read_only: bool,
        /// The host name seen inside the jail (RFC 1123). Default: the name.
        "hostname" => hostname: String,
        /// The program and its arguments, as run inside the jail.
        "command" => command: Vec<Spanned<String>>,
        /// The working directory inside the jail. Default: "/".
        "workdir" => workdir: String,
        /// Run as this user (name or uid), looked up in the jail's /etc/passwd.
        /// Default: the jail's root.
        "user" => user: IntOrText,
        /// Run with this host user's credentials (name or uid), looked up in the
        /// host's /etc/passwd.
        "host-user" => host_user: IntOrText,
        /// Supplementary groups (names or gids), looked up where the user is.
        /// Default: the user's groups from the group file.
        "groups" => groups: Vec<Spanned<IntOrText>>,
        /// Start from an empty environment keeping only HOME, SHELL and USER of
        /// the target login and TERM of the caller. Default: false.
        "clean-env" => clean_env: bool,
        /// Environment variables to set, after `clean-env` is applied.
        "env" => env: Map<String>,
        /// Capabilities beyond the default policy: "all-domains", "raw-sockets",
        /// "ipc", "chflags", "rlimit".
        "allow" => allow: Vec<Spanned<Allow>>,
        /// How long `down` waits after the stop signal before SIGKILL: seconds, or
        /// a string such as "10s" or "500ms". Default: "10s".
        "stop-timeout" => stop_timeout: IntOrText,
        /// The signal `down` sends first. Default: "SIGTERM".
        "stop-signal" => stop_signal: StopSignal,
        /// How long a background jail's command must run before `up -b` reports
        /// it started: a command that fails within it makes `up -b` fail. Seconds,
        /// or a string such as "500ms". Default: "1s".
        "start-window" => start_window: IntOrText,
        /// Whether the supervisor starts the jail again when its command ends:
        /// "no" (default), "on-failure" (a non-zero status, a signal, a limit
        /// kill) or "always" (any end but `down` or the supervisor's SIGTERM).
        "restart" => restart: Restart,
        /// How many restarts in a row `restart` allows before the jail stays
        /// down; a run that lasted 10 minutes resets the count. Default: 5.
        "restart-limit" => restart_limit: i64,
        /// For background jails: a host file that receives the jail's output,
        /// or "journal" for the systemd journal. Default: NAME.log in the state
        /// directory, which `down` removes.
        "log" => log: String,
        /// How large `log` and `log-denials` grow before they are rotated (the
        /// file renamed with ".1" appended, replacing the previous one), such
        /// as "10M". At least "64K". Default: "10M".
        "log-size" => log_size: IntOrText,
        /// A host file that receives one line for every call the policy denied.
        "log-denials" => log_denials: String,
        /// The jail's network: mode and address lists.
        "network" => network: RawNetwork,
        /// Resource limits: cgroup limits and hard rlimits.
        "limits" => limits: RawLimits,
        /// Commands run around the jail's life, as jail.conf's exec.prestart,
        /// exec.poststart, exec.prestop and exec.poststop.
        "hooks" => hooks: RawHooks,
        /// File systems mounted into the jail, in order.
        "mount" => mount: Vec<Spanned<RawMount>>,
    }
}

toml_table! {
    /// The `[hooks]` table: each key a list of commands (program and
    /// arguments, the program an absolute path), run in order; each must
    /// finish within `timeout`.
    pub struct RawHooks {
        /// On the host, as the user running sysjail, before the jail is made:
        /// a failure aborts the start with the hook's status.
        "prestart" => prestart: Vec<Spanned<Vec<Spanned<String>>>>,
        /// Inside the jail, as `sysjail exec` runs a command, once the jail's
        /// command has been executed: a failure stops the jail.
        "poststart" => poststart: Vec<Spanned<Vec<Spanned<String>>>>,
        /// Inside the jail, before the stop signal of `down`; a failure is
        /// reported and the stop goes on.
        "prestop" => prestop: Vec<Spanned<Vec<Spanned<String>>>>,
        /// On the host, as the user running sysjail, after the jail is torn
        /// down; a failure is reported.
        "poststop" => poststop: Vec<Spanned<Vec<Spanned<String>>>>,
        /// How long each hook may run before it is killed and counts as
        /// failed: seconds, or a string such as "10s". At most "1h".
        /// Default: "10s".
        "timeout" => timeout: IntOrText,
    }
}

toml_table! {
    /// The `[network]` table.
    pub struct RawNetwork {
        /// "private": the jail's own network stack, with its own loopback
        /// (127.0.0.1 and ::1) and, when it has addresses, a veth interface
        /// holding exactly them. "host": the host's stack, every socket
        /// confined to the listed addresses. "disabled": the jail's own
        /// network stack and no IPv4 or IPv6 socket at all. Default: "private"
        /// when the jail lists an address, "disabled" otherwise.
        "mode" => mode: NetMode,
        /// IPv4 addresses. The first is the rewrite target: binds and connections
        /// on any unlisted address use it. Later ones pass unchanged. Empty: IPv4
        /// sockets are denied.
        "ipv4" => ipv4: Vec<Spanned<String>>,
        /// IPv6 addresses, with the same rules as `ipv4`.
        "ipv6" => ipv6: Vec<Spanned<String>>,
        /// Private mode: attach the host end of the veth to this existing bridge.
        "bridge" => bridge: String,
        /// Private mode: the jail's IPv4 default route. Without `bridge`, the host
        /// end of the veth holds this address (point to point); with one, it is
        /// the router of the bridged network.
        "gateway" => gateway: String,
        /// Private mode: the same for IPv6.
        "gateway6" => gateway6: String,
        /// Private mode: the interface name inside the jail. Default: "eth0".
        "interface" => interface: String,
    }
}

toml_table! {
    /// The `[limits]` table.
    pub struct RawLimits {
        /// Memory limit of the jail's cgroup, such as "512M".
        "memory" => memory: IntOrText,
        /// Maximum number of processes and threads in the jail, its init included.
        "pids" => pids: i64,
        /// CPU time, in cores: 0.5 is half of one core.
        "cpu" => cpu: f64,
        /// Hard and soft RLIMIT_NOFILE: open files per process, or "unlimited".
        "nofile" => nofile: IntOrText,
        /// Hard and soft RLIMIT_NPROC: processes per user, or "unlimited".
        "nproc" => nproc: IntOrText,
        /// Hard and soft RLIMIT_CORE: largest core dump, such as "0" or "1G".
        "core" => core: IntOrText,
        /// Hard and soft RLIMIT_FSIZE: largest file a process may write.
        "fsize" => fsize: IntOrText,
        /// Hard and soft RLIMIT_STACK: main thread stack size.
        "stack" => stack: IntOrText,
        /// Hard and soft RLIMIT_AS: address space per process.
                "as" => address_space: IntOrText,
                /// Size of the jail's /dev/shm (a tmpfs), such as "64M". Default: "64M".
        "shm" => shm: IntOrText,
        /// Hard and soft RLIMIT_MSGQUEUE: bytes of POSIX message queues per user.
        "msgqueue" => msgqueue: IntOrText,
        /// inotify instances the jail's users may hold, each (the jail's
        /// user.max_inotify_instances). Default: the host's per-user limit.
        "inotify-instances" => inotify_instances: i64,
        /// inotify watches the jail's users may hold, each (the jail's
        /// user.max_inotify_watches). Default: the host's per-user limit.
        "inotify-watches" => inotify_watches: i64,
    }
}

toml_table! {
    /// One `[[mount]]` entry.
    pub struct RawMount {
        /// "bind" (default when `source` is set), "tmpfs", "proc" or "dev".
        "type" => kind: MountType,
        /// Bind mounts: the host directory or file.
        "source" => source: String,
        /// Where it appears inside the jail (absolute).
        "target" => target: String,
        /// Mount read-only. Default: true for bind mounts, false otherwise.
        "read-only" => read_only: bool,
        /// Bind mounts: include the mounts below `source`. Default: false.
        "recursive" => recursive: bool,
        /// Bind mounts: show the files with their host owners mapped into the
        /// jail's id range, so that jail users can own them. Default: false.
        "idmap" => idmap: bool,
        /// tmpfs: size limit, such as "64M". Default: "64M".
        "size" => size: IntOrText,
        /// tmpfs: permissions of the root directory, such as "1777". Default: "755".
        "mode" => mode: IntOrText,
    }
}

toml_enum! {
    /// What a jail may do beyond the default policy (the old `--allow-*` flags).
    pub enum Allow {
        /// Sockets of every address family, not only unix, inet, inet6 and
        /// route netlink.
        AllDomains = "all-domains",
        /// SOCK_RAW and IPPROTO_RAW sockets, with CAP_NET_RAW.
        RawSockets = "raw-sockets",
        /// System V IPC: message queues, semaphores, shared memory.
        Ipc = "ipc",
        /// Inode flags (chattr): FS_IOC_SETFLAGS and FS_IOC_FSSETXATTR, with
        /// CAP_LINUX_IMMUTABLE.
        Chflags = "chflags",
        /// Raising hard resource limits, with CAP_SYS_RESOURCE.
        Rlimit = "rlimit",
    }
}

toml_enum! {
    /// The network mode.
    pub enum NetMode {
        /// The host's network stack, confined to the listed addresses.
        Host = "host",
        /// The jail's own network namespace.
        Private = "private",
        /// The jail's own network namespace, without inet sockets.
        Disabled = "disabled",
    }
}

toml_enum! {
    /// Kinds of mounts.
    pub enum MountType {
        /// A host directory or file.
        Bind = "bind",
        /// A memory-backed file system.
        Tmpfs = "tmpfs",
        /// The jail's own /proc.
        Proc = "proc",
        /// The jail's minimal /dev.
        Dev = "dev",
    }
}

toml_enum! {
    /// When the supervisor starts a jail again.
    pub enum Restart {
        /// Never.
        No = "no",
        /// When the command failed: a non-zero status or a signal.
        OnFailure = "on-failure",
        /// Whenever the command ended, but not when asked to stop.
        Always = "always",
    }
}

toml_enum! {
    /// Signals a jail can be asked to stop with.
    pub enum StopSignal {
        /// SIGTERM.
        Term = "SIGTERM",
        /// SIGINT.
        Int = "SIGINT",
        /// SIGHUP.
        Hup = "SIGHUP",
        /// SIGQUIT.
        Quit = "SIGQUIT",
        /// SIGUSR1.
        Usr1 = "SIGUSR1",
        /// SIGUSR2.
        Usr2 = "SIGUSR2",
        /// SIGPWR, which some inits treat as "shut down".
        Pwr = "SIGPWR",
        /// SIGKILL: no grace period.
        Kill = "SIGKILL",
    }
}

impl StopSignal {
    /// The signal number on Linux.
    pub const fn number(self) -> i32 {
        match self {
            StopSignal::Hup => 1,
            StopSignal::Int => 2,
            StopSignal::Quit => 3,
            StopSignal::Kill => 9,
            StopSignal::Usr1 => 10,
            StopSignal::Usr2 => 12,
            StopSignal::Term => 15,
            StopSignal::Pwr => 30,
        }
    }
}
