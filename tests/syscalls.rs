//! The system call table is what its generator makes of the headers: the
//! x86_64 and i386 tables of src/syscalls/generated.rs against
//! tools/gen-syscalls.py run on this machine's UAPI headers (linux-libc-dev,
//! which CI installs; the arm tables need Debian's foreign packages, which
//! tools/gen-syscalls.sh fetches).

use std::collections::BTreeSet;
use std::process::Command;

use sysjail::syscalls::Abi;

#[test]
#[cfg(target_arch = "x86_64")]
fn x86_tables_are_the_generators_output() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/tools/gen-syscalls.py"))
        .args(["--x86", "/usr/include"])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}: apt-get install python3 linux-libc-dev gcc"));
    assert!(
        out.status.success(),
        "gen-syscalls.py --x86 (apt-get install linux-libc-dev): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for (key, abi) in [("X86_64", Abi::X86_64), ("I386", Abi::I386)] {
        let generated: BTreeSet<(String, u32)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == key).then_some(())?;
                Some((w.next()?.to_string(), w.next()?.parse().ok()?))
            })
            .collect();
        let ours: BTreeSet<(String, u32)> = abi.calls().iter().map(|(c, nr)| (c.to_string(), *nr)).collect();
        assert!(
            generated.len() > 300,
            "{key}: only {} calls in the headers",
            generated.len()
        );
        assert_eq!(
            ours.symmetric_difference(&generated).collect::<Vec<_>>(),
            Vec::<&(String, u32)>::new(),
            "{key}: generated.rs and tools/gen-syscalls.py differ: rerun tools/gen-syscalls.sh"
        );
    }
}

#[test]
fn every_name_is_a_call() {
    // Constants of the headers that share the __NR_ prefix are not calls.
    for call in sysjail::syscalls::Sysno::ALL {
        let name = call.to_string();
        assert_eq!(name, name.to_lowercase(), "{name} is not a system call");
    }
}
