//! The probe: a small program that runs inside a jail, tries the forbidden
//! things and reports, as JSON, what each call returned and what it observes.
//!
//! It is the only code outside the executor and the supervisor that makes raw
//! system calls: its purpose is to make exactly the calls the policy forbids,
//! the same way a hostile program would (the native ABI, and i386's `int 0x80`
//! on x86_64), and report the kernel's answer unchanged.

use std::collections::BTreeMap;
use std::ffi::CString;

use serde::Serialize;

const FS_NODUMP_FL: u64 = 0x40;

/// What one call returned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Outcome {
    /// The return value (-1 on failure for libc-style calls).
    pub ret: i64,
    /// errno, 0 on success.
    pub errno: i32,
    /// A socket address the check observed: where a socket ended up bound,
    /// or where a peer came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
}

impl Outcome {
    fn of(ret: i64) -> Outcome {
        let errno = if ret < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        Outcome { ret, errno, addr: None }
    }

    /// A raw kernel return: -4095..-1 is an error.
    fn raw(ret: i64) -> Outcome {
        if (-4095..0).contains(&ret) {
            Outcome {
                ret: -1,
                errno: (-ret) as i32,
                ..Outcome::default()
            }
        } else {
            Outcome {
                ret,
                errno: 0,
                addr: None,
            }
        }
    }
}

/// Everything the probe saw.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Report {
    /// Facts about the process.
    pub facts: BTreeMap<String, serde_json::Value>,
    /// Outcome of each check run.
    pub checks: BTreeMap<String, Outcome>,
}

fn sys(nr: libc::c_long, args: [u64; 6]) -> Outcome {
    // SAFETY: the probe's checks pass integers, null pointers, or pointers to
    // live local buffers; whatever the call does, it does to this process.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    Outcome::of(r)
}

/// A system call through the i386 ABI (`int 0x80`), numbers and all.
#[cfg(target_arch = "x86_64")]
pub(super) fn int80(nr: u32, args: [u32; 6]) -> Outcome {
    let ret: i64;
    // SAFETY: int 0x80 enters the kernel's i386 entry point with the i386
    // registers; rbx and rbp, which the compiler reserves, are saved around it
    // and r8-r11 are declared clobbered. The arguments are integers or
    // pointers below 4 GiB.
    unsafe {
        std::arch::asm!(
            "push rbx",
            "push rbp",
            "mov ebx, {a0:e}",
            "mov ebp, {a5:e}",
            "int 0x80",
            "pop rbp",
            "pop rbx",
            a0 = in(reg) args[0],
            a5 = in(reg) args[5],
            inlateout("rax") u64::from(nr) => ret,
            in("rcx") u64::from(args[1]),
            in("rdx") u64::from(args[2]),
            in("rsi") u64::from(args[3]),
            in("rdi") u64::from(args[4]),
            // Kernels before 4.17 zeroed these on int 0x80 from 64-bit code.
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    Outcome::raw(ret as i32 as i64)
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn int80(_: u32, _: [u32; 6]) -> Outcome {
    Outcome {
        ret: -1,
        errno: libc::ENOSYS,
        ..Outcome::default()
    }
}

/// A buffer below 4 GiB, for pointers passed through the 32-bit ABI.
#[cfg(target_arch = "x86_64")]
pub(super) fn low_buffer(bytes: &[u8]) -> u32 {
    // SAFETY: an anonymous private mapping; MAP_32BIT places it below 2 GiB.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return 0;
    }
    // SAFETY: p is a fresh 4096-byte writable mapping; bytes are fewer.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast(), bytes.len().min(4096)) };
    p as u32
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn low_buffer(_: &[u8]) -> u32 {
    0
}

const SYS_SOCKET: u32 = 1;
const SYS_LISTEN: u32 = 4;
const SYS_SOCKETPAIR: u32 = 8;

/// socketcall(2) through `int 0x80`, its argument words below 4 GiB.
fn socketcall(call: u32, words: &[u32]) -> Outcome {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    int80(102, [call, low_buffer(&bytes), 0, 0, 0, 0])
}

/// socketcall(SOCKETPAIR) of a unix stream pair: the two descriptors the
/// kernel wrote must be connected to each other (EBADF otherwise).
fn i386_socketpair() -> Outcome {
    let sv = low_buffer(&[0xff; 8]);
    let out = socketcall(SYS_SOCKETPAIR, &[1, 1, 0, sv]);
    if out.errno != 0 || sv == 0 {
        return out;
    }
    // SAFETY: sv is a live low mapping of at least 8 bytes.
    let [a, b] = unsafe { std::ptr::read(sv as usize as *const [i32; 2]) };
    let mut got = [0u8; 1];
    // SAFETY: write and read on the two descriptors, with local buffers.
    let works =
        unsafe { libc::write(a, b"x".as_ptr().cast(), 1) == 1 && libc::read(b, got.as_mut_ptr().cast(), 1) == 1 };
    if works && got == *b"x" {
        out
    } else {
        Outcome {
            ret: -1,
            errno: libc::EBADF,
            addr: None,
        }
    }
}

/// listen(2) through socketcall on a TCP socket never bound, made through
/// socketcall or i386's socket(2).
fn i386_listen(through_socketcall: bool, arg: Option<&str>) -> Outcome {
    let hold = arg.and_then(|a| a.parse().ok()).unwrap_or(0);
    let made = if through_socketcall {
        socketcall(SYS_SOCKET, &[2, 1, 0])
    } else {
        int80(359, [2, 1, 0, 0, 0, 0])
    };
    if made.errno != 0 {
        return made;
    }
    // SAFETY: the descriptor is the socket just made, ours alone.
    let listener = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(made.ret as i32) };
    let out = listen_bound(made.ret as i32, |fd| socketcall(SYS_LISTEN, &[fd as u32, 8]));
    if out.errno == 0 && hold > 0 {
        super::netprobe::serve_for(&listener, std::time::Duration::from_millis(hold));
    }
    out
}

/// A TCP socket made through socketcall, bound to `to` through socketcall.
fn i386_bind(to: std::net::SocketAddrV4) -> Outcome {
    const SYS_BIND: u32 = 2;
    let made = socketcall(SYS_SOCKET, &[2, 1, 0]);
    if made.errno != 0 {
        return made;
    }
    let fd = made.ret as i32;
    // SAFETY: the descriptor is the socket just made, ours alone; closed on drop.
    let _owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut sin = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    sin.extend(to.port().to_be_bytes());
    sin.extend(to.ip().octets());
    sin.extend([0; 8]);
    let bound = socketcall(SYS_BIND, &[fd as u32, low_buffer(&sin), sin.len() as u32]);
    if bound.errno != 0 {
        return bound;
    }
    listen_bound(fd, |_| Outcome::default())
}

/// A native TCP socket, never bound, listened on by `listen`.
fn listen_unbound(listen: impl FnOnce(i32) -> Outcome) -> Outcome {
    // SAFETY: integer arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Outcome::of(-1);
    }
    let out = listen_bound(fd, listen);
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    out
}

/// `listen(fd)`, then where the socket listens.
fn listen_bound(fd: i32, listen: impl FnOnce(i32) -> Outcome) -> Outcome {
    let out = listen(fd);
    if out.errno != 0 {
        return out;
    }
    // SAFETY: getsockname into a local sockaddr_in of the length given.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe { libc::getsockname(fd, (&mut sin as *mut libc::sockaddr_in).cast(), &mut len) } < 0 {
        return Outcome::of(-1);
    }
    let at = std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    );
    Outcome {
        ret: 0,
        errno: 0,
        addr: Some(at.to_string()),
    }
}

/// A path as the kernel takes it, for [`low_buffer`].
fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Calls `take` until it fails (at most 100,000 times), keeping what it
/// returned, then holds it all for `arg` seconds (at most 60). The outcome is
/// how many were taken and the errno that stopped it.
fn exhaust(arg: Option<&str>, mut take: impl FnMut() -> i64) -> Outcome {
    let mut taken = 0;
    let mut last = Outcome::default();
    for _ in 0..100_000 {
        let r = take();
        if r < 0 {
            last = Outcome::of(r);
            break;
        }
        taken += 1;
    }
    let hold = arg.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0).min(60);
    std::thread::sleep(std::time::Duration::from_secs(hold));
    Outcome { ret: taken, ..last }
}

/// mq_open(3) of a new queue of 8 messages of 8 KiB (64 KiB of the user's
/// RLIMIT_MSGQUEUE each).
fn mq_open_one(name: &str) -> i64 {
    let Ok(name) = CString::new(name) else { return -1 };
    // SAFETY: an all-zero mq_attr, then the two fields mq_open reads.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 8;
    attr.mq_msgsize = 8192;
    // SAFETY: a valid name and attribute struct for the call.
    i64::from(unsafe {
        libc::mq_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
            &attr,
        )
    })
}

/// Every check [`check`] knows itself (netprobe's come after them).
#[cfg(test)]
pub(crate) const CHECKS: &[&str] = &[
    "socket-sock-packet",
    "i386-socket-sock-packet",
    "i386-socketcall-sock-packet",
    "socket-unix",
    "socket-inet",
    "socket-inet6",
    "socket-inet-dgram",
    "socket-sctp",
    "socket-mptcp",
    "socket-inet-seqpacket",
    "socket-udplite",
    "socket-ping",
    "socket-tcp",
    "socket-packet",
    "socket-packet-raw",
    "socket-netlink-route",
    "socket-netlink-audit",
    "socket-raw",
    "socket-raw6",
    "socket-raw-flags",
    "socket-ipproto-raw",
    "socket-packet-high-bits",
    "socket-inet-high-bits",
    "socketpair-unix",
    "ipc-msgget",
    "ipc-semget",
    "ipc-shmget",
    "mq-open",
    "sethostname",
    "setdomainname",
    "ioctl-tiocsti",
    "ioctl-tiocsti-high-bits",
    "ioctl-siocsifflags",
    "ioctl-siocaddrt",
    "ioctl-setflags",
    "init-module",
    "finit-module",
    "delete-module",
    "mount",
    "umount2",
    "pivot-root",
    "open-tree",
    "fsopen",
    "move-mount",
    "unshare-user",
    "unshare-net",
    "unshare-files",
    "clone-newuser",
    "clone3",
    "setns",
    "io-uring-setup",
    "bpf",
    "perf-event-open",
    "userfaultfd",
    "keyctl",
    "add-key",
    "kexec-load",
    "open-by-handle-at",
    "acct",
    "swapon",
    "settimeofday",
    "clock-settime",
    "adjtimex",
    "syslog",
    "personality-query",
    "personality-read-implies-exec",
    "setrlimit-raise",
    "setrlimit-lower",
    "setrlimit-race",
    "getrlimit-nofile",
    "kill",
    "ptrace-init",
    "reboot-cad-off",
    "reboot-halt",
    "read-shadow",
    "write-file",
    "chmod-setuid",
    "create-setuid",
    "setcap",
    "openat2",
    "i386-chmod-setuid",
    "i386-create-setuid",
    "connect-abstract",
    "getppid",
    "inotify-exhaust",
    "inotify-init",
    "mq-exhaust",
    "set-comm",
    "stdout-type",
    "ftruncate-stdout",
    "lseek-stdout",
    "repeat",
    "alloc",
    "busy",
    "forks",
    "abstract-self",
    "recv-fd-open",
    "unknown-syscall",
    "x32-getpid",
    "i386-getpid",
    "i386-socket-packet",
    "i386-socket-inet",
    "i386-socket-unix",
    "i386-socket-raw",
    "i386-socket-sctp",
    "i386-socket-mptcp",
    "i386-socketcall-socket",
    "i386-socketcall-unix",
    "i386-socketcall-packet",
    "i386-socketcall-raw",
    "i386-socketcall-inet6",
    "i386-socketcall-bind",
    "i386-socketcall-socketpair",
    "i386-socketcall-listen",
    "i386-socket-socketcall-listen",
    "listen-thread",
    "i386-ipc-msgget",
    "i386-msgget",
    "i386-sethostname",
    "i386-init-module",
    "i386-unshare-user",
    "i386-mount",
    "i386-io-uring-setup",
    "i386-clone3",
    "i386-ioctl-tiocsti",
    "i386-bpf",
    "i386-reboot-halt",
];

/// Runs one named check.
#[allow(clippy::too_many_lines)]
pub fn check(name: &str, arg: Option<&str>) -> Option<Outcome> {
    use libc::*;
    let s = |domain: i32, ty: i32, proto: i32| sys(SYS_socket, [domain as u64, ty as u64, proto as u64, 0, 0, 0]);
    let hostname = c"probe";
    Some(match name {
        "socket-unix" => s(AF_UNIX, SOCK_STREAM, 0),
        "socket-inet" => s(AF_INET, SOCK_STREAM, 0),
        "socket-inet6" => s(AF_INET6, SOCK_STREAM, 0),
        "socket-inet-dgram" => s(AF_INET, SOCK_DGRAM, 0),
        // The obsolete SOCK_PACKET type: a packet socket, whatever the domain.
        "socket-sock-packet" => s(AF_INET, 10, i32::from((ETH_P_ALL as u16).to_be())),
        "socket-sctp" => s(AF_INET, SOCK_STREAM, IPPROTO_SCTP),
        "socket-mptcp" => s(AF_INET, SOCK_STREAM, IPPROTO_MPTCP),
        "socket-inet-seqpacket" => s(AF_INET, SOCK_SEQPACKET, 0),
        "socket-udplite" => s(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE),
        "socket-ping" => s(AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
        "socket-tcp" => s(AF_INET, SOCK_STREAM, IPPROTO_TCP),
        "socket-packet" => s(AF_PACKET, SOCK_DGRAM, 0),
        "socket-packet-raw" => s(AF_PACKET, SOCK_RAW, 0),
        "socket-netlink-route" => s(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE),
        "socket-netlink-audit" => s(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT),
        "socket-raw" => s(AF_INET, SOCK_RAW, IPPROTO_ICMP),
        "socket-raw6" => s(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6),
        // The type carries flags in its upper bits; the filter masks them off.
        "socket-raw-flags" => s(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP),
        "socket-ipproto-raw" => s(AF_INET, SOCK_DGRAM, IPPROTO_RAW),
        // The upper half of an int argument is ignored by the kernel; a filter
        // comparing 64 bits would let these through (CVE-2019-10063).
        "socket-packet-high-bits" => sys(SYS_socket, [AF_PACKET as u64 | 1 << 32, SOCK_DGRAM as u64, 0, 0, 0, 0]),
        "socket-inet-high-bits" => sys(SYS_socket, [AF_INET as u64 | 1 << 32, SOCK_STREAM as u64, 0, 0, 0, 0]),
        "socketpair-unix" => {
            let mut fds = [0i32; 2];
            sys(
                SYS_socketpair,
                [AF_UNIX as u64, SOCK_STREAM as u64, 0, fds.as_mut_ptr() as u64, 0, 0],
            )
        }
        "ipc-msgget" => sys(SYS_msgget, [IPC_PRIVATE as u64, 0o600, 0, 0, 0, 0]),
        "ipc-semget" => sys(SYS_semget, [IPC_PRIVATE as u64, 1, 0o600, 0, 0, 0]),
        "ipc-shmget" => sys(SYS_shmget, [IPC_PRIVATE as u64, 4096, 0o600, 0, 0, 0]),
        "mq-open" => mq_open_unlink(),
        "sethostname" => sys(SYS_sethostname, [hostname.as_ptr() as u64, 5, 0, 0, 0, 0]),
        "setdomainname" => sys(SYS_setdomainname, [hostname.as_ptr() as u64, 5, 0, 0, 0, 0]),
        "ioctl-tiocsti" => {
            let c = b'x';
            sys(SYS_ioctl, [0, TIOCSTI, &c as *const u8 as u64, 0, 0, 0])
        }
        "ioctl-tiocsti-high-bits" => {
            let c = b'x';
            sys(SYS_ioctl, [0, TIOCSTI | 1 << 32, &c as *const u8 as u64, 0, 0, 0])
        }
        "ioctl-siocsifflags" | "ioctl-siocaddrt" => ioctl_lo(name),
        "ioctl-setflags" => ioctl_setflags(arg)?,
        "init-module" => sys(SYS_init_module, [0, 0, c"".as_ptr() as u64, 0, 0, 0]),
        "finit-module" => sys(SYS_finit_module, [u64::MAX, c"".as_ptr() as u64, 0, 0, 0, 0]),
        "delete-module" => sys(SYS_delete_module, [c"probe".as_ptr() as u64, 0, 0, 0, 0, 0]),
        "mount" => sys(
            SYS_mount,
            [
                c"none".as_ptr() as u64,
                c"/tmp".as_ptr() as u64,
                c"tmpfs".as_ptr() as u64,
                0,
                0,
                0,
            ],
        ),
        "umount2" => sys(SYS_umount2, [c"/proc".as_ptr() as u64, MNT_DETACH as u64, 0, 0, 0, 0]),
        "pivot-root" => sys(
            SYS_pivot_root,
            [c"/tmp".as_ptr() as u64, c"/tmp".as_ptr() as u64, 0, 0, 0, 0],
        ),
        "open-tree" => sys(SYS_open_tree, [AT_FDCWD as u64, c"/".as_ptr() as u64, 1, 0, 0, 0]),
        "fsopen" => sys(SYS_fsopen, [c"tmpfs".as_ptr() as u64, 0, 0, 0, 0, 0]),
        "move-mount" => sys(
            SYS_move_mount,
            [
                u64::MAX,
                c"".as_ptr() as u64,
                AT_FDCWD as u64,
                c"/tmp".as_ptr() as u64,
                0,
                0,
            ],
        ),
        "unshare-user" => sys(SYS_unshare, [CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        "unshare-net" => sys(SYS_unshare, [CLONE_NEWNET as u64, 0, 0, 0, 0, 0]),
        "unshare-files" => sys(SYS_unshare, [CLONE_FILES as u64, 0, 0, 0, 0, 0]),
        "clone-newuser" => {
            let r = sys(SYS_clone, [CLONE_NEWUSER as u64 | SIGCHLD as u64, 0, 0, 0, 0, 0]);
            if r.ret == 0 {
                // SAFETY: the child of a successful clone leaves at once.
                unsafe { _exit(0) };
            }
            r
        }
        "clone3" => sys(SYS_clone3, [0, 0, 0, 0, 0, 0]),
        "setns" => sys(SYS_setns, [u64::MAX, 0, 0, 0, 0, 0]),
        "io-uring-setup" => sys(SYS_io_uring_setup, [1, 0, 0, 0, 0, 0]),
        "bpf" => sys(SYS_bpf, [0, 0, 0, 0, 0, 0]),
        "perf-event-open" => sys(SYS_perf_event_open, [0, 0, u64::MAX, u64::MAX, 0, 0]),
        "userfaultfd" => sys(SYS_userfaultfd, [0, 0, 0, 0, 0, 0]),
        "keyctl" => sys(SYS_keyctl, [0, 0, 0, 0, 0, 0]),
        "add-key" => sys(SYS_add_key, [0, 0, 0, 0, 0, 0]),
        "kexec-load" => sys(SYS_kexec_load, [0, 0, 0, 0, 0, 0]),
        "open-by-handle-at" => sys(SYS_open_by_handle_at, [AT_FDCWD as u64, 0, 0, 0, 0, 0]),
        "acct" => sys(SYS_acct, [0, 0, 0, 0, 0, 0]),
        "swapon" => sys(SYS_swapon, [c"/nonexistent".as_ptr() as u64, 0, 0, 0, 0, 0]),
        "settimeofday" => sys(SYS_settimeofday, [0, 0, 0, 0, 0, 0]),
        "clock-settime" => {
            let ts = timespec { tv_sec: 0, tv_nsec: 0 };
            sys(
                SYS_clock_settime,
                [CLOCK_REALTIME as u64, &ts as *const timespec as u64, 0, 0, 0, 0],
            )
        }
        "adjtimex" => {
            // SAFETY: timex is plain data; modes 0 only reads.
            let mut t: timex = unsafe { std::mem::zeroed() };
            sys(SYS_adjtimex, [&mut t as *mut timex as u64, 0, 0, 0, 0, 0])
        }
        "syslog" => sys(SYS_syslog, [3, 0, 0, 0, 0, 0]),
        "personality-query" => sys(SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
        "personality-read-implies-exec" => sys(SYS_personality, [READ_IMPLIES_EXEC as u64, 0, 0, 0, 0, 0]),
        "setrlimit-raise" => setrlimit_raise(),
        "setrlimit-lower" => setrlimit_lower(),
        "setrlimit-race" => setrlimit_race(arg?.parse().ok()?),
        "getrlimit-nofile" => getrlimit_nofile(),
        "kill" => {
            // kill:PID:SIG
            let (pid, sig) = arg?.split_once(':')?;
            sys(
                SYS_kill,
                [pid.parse::<i64>().ok()? as u64, sig.parse::<u64>().ok()?, 0, 0, 0, 0],
            )
        }
        "ptrace-init" => sys(SYS_ptrace, [PTRACE_ATTACH as u64, 1, 0, 0, 0, 0]),
        "reboot-cad-off" => sys(
            SYS_reboot,
            [0xfee1_dead, 0x2812_1969, LINUX_REBOOT_CMD_CAD_OFF as u64, 0, 0, 0],
        ),
        "reboot-halt" => sys(
            SYS_reboot,
            [0xfee1_dead, 0x2812_1969, LINUX_REBOOT_CMD_HALT as u64, 0, 0, 0],
        ),
        "read-shadow" => {
            // SAFETY: open(2) of a path; closed below.
            let fd = unsafe { open(c"/etc/shadow".as_ptr(), O_RDONLY | O_CLOEXEC) };
            let r = Outcome::of(fd.into());
            if fd >= 0 {
                // SAFETY: ours.
                unsafe { close(fd) };
            }
            r
        }
        "write-file" => {
            let path = CString::new(arg?).ok()?;
            // SAFETY: open(2); closed below.
            let fd = unsafe { open(path.as_ptr(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644) };
            if fd >= 0 {
                // SAFETY: ours.
                unsafe { close(fd) };
            }
            Outcome::of(fd.into())
        }
        // Set-id bits and file capabilities on files the jail writes.
        "chmod-setuid" => {
            let path = CString::new(arg?).ok()?;
            sys(SYS_fchmodat, [AT_FDCWD as u64, path.as_ptr() as u64, 0o4755, 0, 0, 0])
        }
        "create-setuid" => create_setuid(arg?)?,
        "setcap" => setcap(arg?)?,
        "openat2" => openat2_root(),
        "i386-chmod-setuid" => int80(15, [low_buffer(&nul_terminated(arg?)), 0o4755, 0, 0, 0, 0]),
        "i386-create-setuid" => int80(
            5,
            [
                low_buffer(&nul_terminated(arg?)),
                (O_CREAT | O_WRONLY) as u32,
                0o4755,
                0,
                0,
                0,
            ],
        ),
        "connect-abstract" => connect_abstract(arg?),
        "getppid" => sys(SYS_getppid, [0; 6]),
        // The process's name (comm), which the jail chooses: whatever a
        // denial log prints of it must stay on one line.
        // Per-user kernel counters: take every inotify instance or message
        // queue this user may have (ret: how many), and hold them for ARG
        // seconds; or take one.
        "inotify-exhaust" => exhaust(arg, || {
            // SAFETY: inotify_init1(2) with a flag; the descriptor is kept.
            i64::from(unsafe { inotify_init1(IN_CLOEXEC) })
        }),
        "inotify-init" => sys(SYS_inotify_init1, [IN_CLOEXEC as u64, 0, 0, 0, 0, 0]),
        "mq-exhaust" => {
            let mut n = 0u32;
            exhaust(arg, || {
                n += 1;
                mq_open_one(&format!("/sysjail-probe-{}-{n}", std::process::id()))
            })
        }
        "set-comm" => {
            let name = CString::new(arg?).ok()?;
            sys(SYS_prctl, [PR_SET_NAME as u64, name.as_ptr() as u64, 0, 0, 0, 0])
        }
        // What stdout is: ret is its file type (S_IFIFO, S_IFREG...).
        "stdout-type" => {
            // SAFETY: st is written by fstat before it is read.
            let mut st: stat = unsafe { std::mem::zeroed() };
            // SAFETY: fstat of descriptor 1 into a local struct.
            match unsafe { fstat(1, &mut st) } {
                0 => Outcome::of(i64::from(st.st_mode & S_IFMT)),
                r => Outcome::of(i64::from(r)),
            }
        }
        // A jail tampering with its log through its own stdout.
        "ftruncate-stdout" => sys(SYS_ftruncate, [1, 0, 0, 0, 0, 0]),
        "lseek-stdout" => sys(SYS_lseek, [1, 0, SEEK_SET as u64, 0, 0, 0]),
        "repeat" => repeat(arg?)?,
        "alloc" => {
            // alloc=BYTES[:HOLD_MS]: allocates and touches BYTES, holds them.
            let (bytes, hold) = match arg?.split_once(':') {
                Some((b, h)) => (b.parse().ok()?, h.parse().ok()?),
                None => (arg?.parse().ok()?, 0),
            };
            alloc(bytes, hold)
        }
        "busy" => busy(arg?.parse().ok()?),
        "forks" => {
            // forks=N[:HOLD_MS]
            let (n, hold) = match arg?.split_once(':') {
                Some((n, h)) => (n.parse().ok()?, h.parse().ok()?),
                None => (arg?.parse().ok()?, 0),
            };
            forks(n, hold)
        }
        "abstract-self" => abstract_self(arg?),
        "recv-fd-open" => {
            // recv-fd-open=SOCKET:NAME: receives a directory descriptor over
            // the unix socket at SOCKET and opens NAME beneath it.
            let (sock, name) = arg?.split_once(':')?;
            recv_fd_open(sock, name)
        }
        // Numbers this policy has no rule for.
        "unknown-syscall" => sys(1000, [0; 6]),
        "x32-getpid" => sys(0x4000_0000 | SYS_getpid, [0; 6]),
        // The same promises through i386's int 0x80, with its own numbers.
        "i386-getpid" => int80(20, [0; 6]),
        "i386-socket-packet" => int80(359, [17, 2, 0, 0, 0, 0]),
        "i386-socket-inet" => int80(359, [2, 1, 0, 0, 0, 0]),
        "i386-socket-unix" => int80(359, [1, 1, 0, 0, 0, 0]),
        "i386-socket-raw" => int80(359, [2, 3, 1, 0, 0, 0]),
        "i386-socket-sctp" => int80(359, [2, 1, IPPROTO_SCTP as u32, 0, 0, 0]),
        "i386-socket-mptcp" => int80(359, [2, 1, IPPROTO_MPTCP as u32, 0, 0, 0]),
        // socketcall(2), the multiplexer i386 libcs call socket(2) through:
        // the supervisor makes the socket, by socket(2)'s rule.
        "i386-socketcall-socket" => socketcall(SYS_SOCKET, &[2, 1, 0]),
        "i386-socketcall-unix" => socketcall(SYS_SOCKET, &[1, 1, 0]),
        "i386-socketcall-packet" => socketcall(SYS_SOCKET, &[17, 2, 0]),
        "i386-socketcall-raw" => socketcall(SYS_SOCKET, &[2, 3, 1]),
        "i386-socketcall-sock-packet" => socketcall(SYS_SOCKET, &[2, 10, 0x0300]),
        "i386-socket-sock-packet" => int80(359, [2, 10, 0x0300, 0, 0, 0]),
        "i386-socketcall-inet6" => socketcall(SYS_SOCKET, &[10, 1, 0]),
        // i386-socketcall-bind=ADDR: where a TCP socket made through
        // socketcall ends up when bound to ADDR through socketcall.
        "i386-socketcall-bind" => i386_bind(arg?.parse().ok()?),
        "i386-socketcall-socketpair" => i386_socketpair(),
        // i386-socketcall-listen[=HOLD_MS]: listen(2) through socketcall on a
        // TCP socket never bound, made through socketcall; says where it
        // listens, and holds it open, greeting peers, for HOLD_MS.
        "i386-socketcall-listen" => i386_listen(true, arg),
        // The same on a socket made by i386's socket(2).
        "i386-socket-socketcall-listen" => i386_listen(false, arg),
        // listen(2) on a TCP socket never bound, from a second thread.
        "listen-thread" => std::thread::spawn(|| listen_unbound(|fd| sys(SYS_listen, [fd as u64, 1, 0, 0, 0, 0])))
            .join()
            .unwrap_or_default(),
        "i386-ipc-msgget" => int80(117, [13, 0, 0o600, 0, 0, 0]),
        "i386-msgget" => int80(399, [0, 0o600, 0, 0, 0, 0]),
        "i386-sethostname" => int80(74, [low_buffer(b"probe"), 5, 0, 0, 0, 0]),
        "i386-init-module" => int80(128, [0, 0, 0, 0, 0, 0]),
        "i386-unshare-user" => int80(310, [libc::CLONE_NEWUSER as u32, 0, 0, 0, 0, 0]),
        "i386-mount" => int80(21, [0, low_buffer(b"/tmp\0"), low_buffer(b"tmpfs\0"), 0, 0, 0]),
        "i386-io-uring-setup" => int80(425, [1, 0, 0, 0, 0, 0]),
        "i386-clone3" => int80(435, [0, 0, 0, 0, 0, 0]),
        "i386-ioctl-tiocsti" => int80(54, [0, TIOCSTI as u32, low_buffer(b"x"), 0, 0, 0]),
        "i386-bpf" => int80(357, [0, 0, 0, 0, 0, 0]),
        "i386-reboot-halt" => int80(88, [0xfee1_dead, 0x2812_1969, LINUX_REBOOT_CMD_HALT as u32, 0, 0, 0]),
        _ => return super::netprobe::check(name, arg),
    })
}

/// Creates a message queue and removes it again.
fn mq_open_unlink() -> Outcome {
    use libc::*;
    let name = c"sysjail-probe";
    let r = sys(
        SYS_mq_open,
        [name.as_ptr() as u64, (O_CREAT | O_RDWR) as u64, 0o600, 0, 0, 0],
    );
    sys(SYS_mq_unlink, [name.as_ptr() as u64, 0, 0, 0, 0, 0]);
    r
}

/// SIOCSIFFLAGS or SIOCADDRT (by check `name`) on the loopback interface.
fn ioctl_lo(name: &str) -> Outcome {
    use libc::*;
    // SAFETY: socket(2) with integer arguments.
    let fd = unsafe { socket(AF_UNIX, SOCK_DGRAM, 0) };
    // SAFETY: ifreq is plain data.
    let mut req: ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as c_char;
    req.ifr_name[1] = b'o' as c_char;
    let cmd = if name == "ioctl-siocsifflags" {
        SIOCSIFFLAGS
    } else {
        SIOCADDRT
    };
    let r = sys(SYS_ioctl, [fd as u64, cmd, &mut req as *mut ifreq as u64, 0, 0, 0]);
    // SAFETY: closing our own descriptor.
    unsafe { close(fd) };
    r
}

/// FS_IOC_SETFLAGS (nodump) on a file made at `arg` or in /tmp.
fn ioctl_setflags(arg: Option<&str>) -> Option<Outcome> {
    use libc::*;
    // The nodump flag needs no privilege: only the filter stands in the way.
    let path = CString::new(arg.unwrap_or("/tmp/.sysjail-probe-flags")).ok()?;
    // SAFETY: open(2) of a file in a writable directory of the jail.
    let fd = unsafe { open(path.as_ptr(), O_CREAT | O_RDWR | O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Some(Outcome::of(-1));
    }
    let flags: c_long = FS_NODUMP_FL as c_long;
    let r = sys(
        SYS_ioctl,
        [fd as u64, FS_IOC_SETFLAGS, &flags as *const c_long as u64, 0, 0, 0],
    );
    // SAFETY: as above.
    unsafe {
        close(fd);
        unlink(path.as_ptr());
    }
    Some(r)
}

/// getrlimit(2) of `resource`, or the errno.
fn limit(resource: libc::__rlimit_resource_t) -> Result<libc::rlimit, Outcome> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills lim.
    let r = unsafe { libc::getrlimit(resource, &mut lim) };
    if r < 0 { Err(Outcome::of(r.into())) } else { Ok(lim) }
}

/// setrlimit(2) of `resource` to `lim`, as the raw call.
fn set_limit(resource: libc::__rlimit_resource_t, lim: &libc::rlimit) -> Outcome {
    sys(
        libc::SYS_setrlimit,
        [resource as u64, lim as *const libc::rlimit as u64, 0, 0, 0, 0],
    )
}

/// Raises RLIMIT_NOFILE's hard limit by one; EINVAL when it is unlimited.
fn setrlimit_raise() -> Outcome {
    let lim = match limit(libc::RLIMIT_NOFILE) {
        Ok(lim) => lim,
        Err(e) => return e,
    };
    if lim.rlim_max == libc::RLIM_INFINITY {
        return Outcome {
            ret: -1,
            errno: libc::EINVAL,
            ..Outcome::default()
        };
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_cur,
        rlim_max: lim.rlim_max + 1,
    };
    set_limit(libc::RLIMIT_NOFILE, &raised)
}

/// Lowers RLIMIT_CORE's soft limit to 0.
fn setrlimit_lower() -> Outcome {
    let lim = match limit(libc::RLIMIT_CORE) {
        Ok(lim) => lim,
        Err(e) => return e,
    };
    set_limit(
        libc::RLIMIT_CORE,
        &libc::rlimit {
            rlim_cur: 0,
            rlim_max: lim.rlim_max,
        },
    )
}

/// RLIMIT_NOFILE's hard limit, as the return value.
fn getrlimit_nofile() -> Outcome {
    limit(libc::RLIMIT_NOFILE).map_or_else(
        |e| e,
        |lim| Outcome {
            ret: lim.rlim_max as i64,
            errno: 0,
            ..Outcome::default()
        },
    )
}

/// Creates `arg` with the set-uid bit.
fn create_setuid(arg: &str) -> Option<Outcome> {
    use libc::*;
    let path = CString::new(arg).ok()?;
    // SAFETY: openat(2) of a path; closed below.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), O_CREAT | O_WRONLY | O_CLOEXEC, 0o4755) };
    if fd >= 0 {
        // SAFETY: ours.
        unsafe { close(fd) };
    }
    Some(Outcome::of(fd.into()))
}

/// Gives `arg` file capabilities.
fn setcap(arg: &str) -> Option<Outcome> {
    // A version 2 capability set: CAP_SETUID (7) permitted and effective.
    let path = CString::new(arg).ok()?;
    let caps: [u32; 5] = [0x0200_0001, 1 << 7, 0, 0, 0];
    // SAFETY: the name and the value are valid for the lengths given.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            caps.as_ptr().cast(),
            std::mem::size_of_val(&caps),
            0,
        )
    };
    Some(Outcome::of(r.into()))
}

/// openat2(2) of "/".
fn openat2_root() -> Outcome {
    // struct open_how { flags, mode, resolve }: O_RDONLY of "/".
    let how = [0u64; 3];
    sys(
        libc::SYS_openat2,
        [
            libc::AT_FDCWD as u64,
            c"/".as_ptr() as u64,
            how.as_ptr() as u64,
            24,
            0,
            0,
        ],
    )
}

/// Connects to @`arg`, an abstract unix socket.
fn connect_abstract(arg: &str) -> Outcome {
    use libc::*;
    let (addr, len) = abstract_address(arg);
    // SAFETY: socket(2).
    let fd = unsafe { socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) };
    // SAFETY: addr is valid for len bytes.
    let r = Outcome::of(unsafe { connect(fd, &addr as *const sockaddr_un as *const sockaddr, len) }.into());
    // SAFETY: ours.
    unsafe { close(fd) };
    r
}

/// repeat=N:CHECK[=ARG]: runs a check N times; returns the mean
/// nanoseconds per run (for bench/), the errno of the last run.
fn repeat(arg: &str) -> Option<Outcome> {
    let (n, inner) = arg.split_once(':')?;
    let n: u32 = n.parse().ok().filter(|&n| n > 0)?;
    let (name, arg) = match inner.split_once('=') {
        Some((c, a)) => (c, Some(a)),
        None => (inner, None),
    };
    let start = std::time::Instant::now();
    let mut last = None;
    for _ in 0..n {
        last = Some(check(name, arg)?);
    }
    Some(Outcome {
        ret: (start.elapsed().as_nanos() / u128::from(n)) as i64,
        errno: last?.errno,
        ..Outcome::default()
    })
}

/// The attack that ended the old sysjail, on setrlimit(2): one thread flips
/// the hard limit in a `struct rlimit` between a lowering (hard - 1) and a
/// raise (hard + 1000) while this thread calls setrlimit(RLIMIT_NOFILE) on
/// it. Whoever decides must decide on one copy; if it read the memory twice,
/// a raise would slip through as a lowering.
///
/// The calls go on until `quota` of them succeeded and `quota` were refused
/// (both values were seen), bounded by 1000 x `quota` calls and 5 seconds.
/// The return value is the number of calls; the errno is ETIMEDOUT when the
/// bound came first. The caller compares the final hard limit
/// (`getrlimit-nofile`) with the original.
fn setrlimit_race(quota: u32) -> Outcome {
    use std::sync::atomic::AtomicU64;
    let lim = match limit(libc::RLIMIT_NOFILE) {
        Ok(lim) => lim,
        Err(e) => return e,
    };
    if lim.rlim_max == libc::RLIM_INFINITY || lim.rlim_max < 2 {
        return Outcome {
            ret: -1,
            errno: libc::EINVAL,
            ..Outcome::default()
        };
    }
    let (lower, raise) = (lim.rlim_max - 1, lim.rlim_max + 1000);
    // Laid out as struct rlimit: two u64 words, shared with the flipper.
    let shared = [AtomicU64::new(lim.rlim_cur.min(lower)), AtomicU64::new(lower)];
    let (ok, refused, calls) = race_setrlimit(&shared, [raise, lower], quota);
    Outcome {
        ret: calls,
        errno: if ok >= quota && refused >= quota {
            0
        } else {
            libc::ETIMEDOUT
        },
        addr: None,
    }
}

/// Calls setrlimit(RLIMIT_NOFILE, shared) while a thread flips the hard limit
/// in `shared` between the two `values`, once it flips, until `quota` calls
/// succeeded and `quota` were refused, bounded by 1000 x `quota` calls and
/// 5 seconds. Returns how many succeeded, were refused, and were made.
fn race_setrlimit(shared: &[std::sync::atomic::AtomicU64; 2], values: [u64; 2], quota: u32) -> (u32, u32, i64) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let stop = AtomicBool::new(false);
    let flipping = AtomicBool::new(false);
    let (mut ok, mut refused, mut calls) = (0u32, 0u32, 0i64);
    let start = Instant::now();
    let bound = |calls: i64| calls >= i64::from(quota) * 1000 || start.elapsed() > Duration::from_secs(5);
    std::thread::scope(|s| {
        s.spawn(|| flip_hard_limit(&shared[1], values, &stop, &flipping, start));
        while !flipping.load(Ordering::Relaxed) && !bound(0) {
            std::thread::yield_now();
        }
        while (ok < quota || refused < quota) && !bound(calls) {
            let r = sys(
                libc::SYS_setrlimit,
                [libc::RLIMIT_NOFILE as u64, shared.as_ptr() as u64, 0, 0, 0, 0],
            );
            calls += 1;
            if r.errno == 0 {
                ok += 1;
            } else {
                refused += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    (ok, refused, calls)
}

/// Until `stop` (or 10 s after `start`): stores the two `values` into `word`
/// in turn, setting `flipping` after each first batch of flips.
fn flip_hard_limit(
    word: &std::sync::atomic::AtomicU64,
    values: [u64; 2],
    stop: &std::sync::atomic::AtomicBool,
    flipping: &std::sync::atomic::AtomicBool,
    start: std::time::Instant,
) {
    use std::sync::atomic::Ordering;
    let mut flips = 0u64;
    while !stop.load(Ordering::Relaxed) && start.elapsed() < std::time::Duration::from_secs(10) {
        for _ in 0..1024 {
            word.store(values[(flips % 2) as usize], Ordering::Relaxed);
            flips += 1;
            std::hint::spin_loop();
        }
        flipping.store(true, Ordering::Relaxed);
    }
}

/// Allocates `bytes`, writing every page so that they are charged, and holds
/// them for `hold_ms`. Under a memory limit the kernel kills the probe here.
fn alloc(bytes: usize, hold_ms: u64) -> Outcome {
    let mut v: Vec<u8> = Vec::new();
    if v.try_reserve_exact(bytes).is_err() {
        return Outcome {
            ret: -1,
            errno: libc::ENOMEM,
            ..Outcome::default()
        };
    }
    // Nonzero bytes: every page is written, none stays the shared zero page.
    v.resize(bytes, 1);
    std::thread::sleep(std::time::Duration::from_millis(hold_ms));
    Outcome {
        ret: std::hint::black_box(&v).len() as i64,
        errno: 0,
        ..Outcome::default()
    }
}

/// Spins for `ms` milliseconds of wall time; returns the CPU time it got, in
/// microseconds.
fn busy(ms: u64) -> Outcome {
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < std::time::Duration::from_millis(ms) {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    // SAFETY: rusage is plain data filled by getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let usec = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    Outcome {
        ret: usec(ru.ru_utime) + usec(ru.ru_stime),
        errno: 0,
        ..Outcome::default()
    }
}

/// Forks up to `n` children that wait on a pipe, holds them `hold_ms`, then
/// ends them all. Returns how many forks succeeded; the errno is the first
/// failure's.
fn forks(n: u32, hold_ms: u64) -> Outcome {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Outcome::of(-1);
    }
    let (mut children, mut errno) = (Vec::new(), 0);
    for _ in 0..n {
        // SAFETY: the child only blocks in read(2) and exits.
        match unsafe { libc::fork() } {
            0 => {
                let mut b = 0u8;
                // SAFETY: blocks until the parent closes the write end.
                unsafe {
                    libc::close(fds[1]);
                    libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
                    libc::_exit(0)
                }
            }
            pid if pid > 0 => children.push(pid),
            _ => {
                errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                break;
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(hold_ms));
    // SAFETY: closing our pipe ends the children; then they are reaped.
    unsafe {
        libc::close(fds[1]);
        libc::close(fds[0]);
        for pid in &children {
            libc::waitpid(*pid, std::ptr::null_mut(), 0);
        }
    }
    Outcome {
        ret: children.len() as i64,
        errno,
        ..Outcome::default()
    }
}

fn abstract_address(name: &str) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path[1..].iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len().min(addr.sun_path.len() - 1);
    (addr, len as libc::socklen_t)
}

/// Listens on the abstract address @NAME and connects to it: abstract sockets
/// of the jail's own Landlock domain keep working.
fn abstract_self(name: &str) -> Outcome {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (addr, len) = abstract_address(name);
    let sa = &addr as *const libc::sockaddr_un as *const libc::sockaddr;
    // SAFETY: socket(2); owned below.
    let listener = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if listener < 0 {
        return Outcome::of(-1);
    }
    // SAFETY: a descriptor just created.
    let listener = unsafe { OwnedFd::from_raw_fd(listener) };
    let l = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // SAFETY: addr is valid for len bytes.
    if unsafe { libc::bind(l, sa, len) } < 0 || unsafe { libc::listen(l, 1) } < 0 {
        return Outcome::of(-1);
    }
    // SAFETY: socket(2); owned below.
    let client = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if client < 0 {
        return Outcome::of(-1);
    }
    // SAFETY: a descriptor just created.
    let client = unsafe { OwnedFd::from_raw_fd(client) };
    // SAFETY: addr is valid for len bytes.
    Outcome::of(unsafe { libc::connect(std::os::fd::AsRawFd::as_raw_fd(&client), sa, len) }.into())
}

/// Receives one descriptor over the unix socket at `path` and opens `name`
/// relative to it: what a descriptor smuggled in from the host reaches.
fn recv_fd_open(path: &str, name: &str) -> Outcome {
    use std::os::fd::AsRawFd;
    let dir = match recv_fd(path) {
        Ok(dir) => dir,
        Err(failed) => return failed,
    };
    let Ok(name) = CString::new(name) else {
        return refused(libc::EINVAL);
    };
    // SAFETY: openat(2) beneath a descriptor we own; closed below.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    let r = Outcome::of(fd.into());
    if fd >= 0 {
        // SAFETY: ours.
        unsafe { libc::close(fd) };
    }
    r
}

/// A failed call's outcome with `errno`.
fn refused(errno: i32) -> Outcome {
    Outcome {
        ret: -1,
        errno,
        ..Outcome::default()
    }
}

/// Connects to the unix socket at `path` and receives one descriptor; the
/// failed step's outcome otherwise.
fn recv_fd(path: &str) -> Result<std::os::fd::OwnedFd, Outcome> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, connect, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let Ok(sock) = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return Err(Outcome::of(-1));
    };
    let addr = UnixAddr::new(path).map_err(|_| refused(libc::EINVAL))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| refused(e as i32))?;
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| refused(e as i32))?;
    let dir = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            // SAFETY: the kernel just installed this descriptor for us.
            ControlMessageOwned::ScmRights(fds) => fds.first().map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            _ => None,
        })
    });
    dir.ok_or_else(|| refused(libc::EBADMSG))
}

/// Facts about the probe's process and its view of the system.
pub fn facts() -> BTreeMap<String, serde_json::Value> {
    let mut f = BTreeMap::new();
    identity_facts(&mut f);
    system_facts(&mut f);
    session_facts(&mut f);
    limit_facts(&mut f);
    f
}

/// Ids, groups, capabilities, no_new_privs and seccomp mode.
fn identity_facts(f: &mut BTreeMap<String, serde_json::Value>) {
    use serde_json::json;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    };
    // SAFETY: getters without arguments.
    let (uid, euid, gid, pid, ppid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getpid(),
            libc::getppid(),
        )
    };
    f.insert("uid".into(), json!(uid));
    f.insert("euid".into(), json!(euid));
    f.insert("gid".into(), json!(gid));
    f.insert("pid".into(), json!(pid));
    f.insert("ppid".into(), json!(ppid));
    f.insert(
        "groups".into(),
        json!(
            field("Groups:")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|g| g.parse::<u32>().ok())
                .collect::<Vec<_>>()
        ),
    );
    for key in [
        "CapEff",
        "CapPrm",
        "CapBnd",
        "CapInh",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ] {
        f.insert(key.to_lowercase(), json!(field(&format!("{key}:")).unwrap_or_default()));
    }
}

/// Hostname, working directory, environment, visible pids, mounts, cgroup
/// and network interfaces.
fn system_facts(f: &mut BTreeMap<String, serde_json::Value>) {
    use serde_json::json;
    f.insert(
        "hostname".into(),
        json!(
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
    );
    f.insert(
        "cwd".into(),
        json!(
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    );
    f.insert("env".into(), json!(std::env::vars().collect::<BTreeMap<_, _>>()));
    let pids: Vec<i64> = std::fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    f.insert("pids".into(), json!(pids));
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .collect();
    f.insert("mounts".into(), json!(mounts));
    f.insert(
        "cgroup".into(),
        json!(std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()),
    );
    let ifaces: Vec<String> = std::fs::read_to_string("/proc/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect();
    f.insert("interfaces".into(), json!(ifaces));
}

/// The probe's terminal and session, and what the jail sees of its init.
fn session_facts(f: &mut BTreeMap<String, serde_json::Value>) {
    use serde_json::json;
    f.insert(
        "tty".into(),
        json!(
            nix::unistd::ttyname(std::io::stdin())
                .map(|p| p.display().to_string())
                .ok()
        ),
    );
    f.insert(
        "sid".into(),
        json!(nix::unistd::getsid(None).map(|p| p.as_raw()).unwrap_or(-1)),
    );
    // What the jail sees of its init: its command line, and its controlling
    // terminal (field 7 of its stat; 0: none).
    f.insert(
        "init_cmdline".into(),
        json!(
            std::fs::read("/proc/1/cmdline")
                .map(|b| String::from_utf8_lossy(&b).trim_end_matches('\0').replace('\0', " "))
                .unwrap_or_default()
        ),
    );
    f.insert(
        "init_tty".into(),
        json!(
            std::fs::read_to_string("/proc/1/stat")
                .ok()
                .and_then(|s| s
                    .rsplit_once(") ")
                    .and_then(|(_, r)| r.split(' ').nth(4)?.parse::<i64>().ok()))
                .unwrap_or(-1)
        ),
    );
}

/// The size of /dev/shm and the RLIMIT_NOFILE limits.
fn limit_facts(f: &mut BTreeMap<String, serde_json::Value>) {
    use serde_json::json;
    f.insert(
        "shm_bytes".into(),
        json!(
            nix::sys::statfs::statfs("/dev/shm")
                .map(|s| s.blocks() * s.block_size() as u64)
                .unwrap_or(0)
        ),
    );
    let lim = limit(libc::RLIMIT_NOFILE).unwrap_or(libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    });
    f.insert("nofile".into(), json!([lim.rlim_cur, lim.rlim_max]));
}

/// Runs the probe: `checks` are `NAME` or `NAME=ARG`. Prints the report as JSON.
pub fn run(checks: &[String]) -> i32 {
    let mut report = Report {
        facts: facts(),
        checks: BTreeMap::new(),
    };
    let mut servers = super::netprobe::Servers::bind(checks);
    for c in checks {
        let (name, arg) = match c.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (c.as_str(), None),
        };
        match servers.serve(c).or_else(|| check(name, arg)) {
            Some(outcome) => {
                report.checks.insert(c.clone(), outcome);
            }
            None => {
                crate::eprintln_lossy!("sysjail probe: unknown check {name}");
                return 2;
            }
        }
    }
    crate::println_lossy!("{}", serde_json::to_string(&report).expect("JSON"));
    0
}

#[cfg(test)]
mod tests {
    /// The names `check` matches, read from its source.
    fn matched() -> Vec<String> {
        let source = include_str!("probe.rs");
        let start = source.find("\npub fn check(").expect("check");
        let end = start + source[start..].find("\n}\n").expect("end of check");
        let mut names = Vec::new();
        for line in source[start..end].lines() {
            let arm = line.trim_start();
            if !arm.starts_with('"') || !arm.contains("=>") {
                continue;
            }
            let pattern = &arm[..arm.find("=>").expect("arm")];
            names.extend(pattern.split('|').map(|n| n.trim().trim_matches('"').to_string()));
        }
        names
    }

    #[test]
    fn checks_lists_every_check_and_no_other() {
        let mut listed: Vec<String> = super::CHECKS.iter().map(|c| c.to_string()).collect();
        let mut matched = matched();
        listed.sort();
        matched.sort();
        assert_eq!(listed, matched);
    }
}
